import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "keep_results.py"


def _run(folder: Path, **files: str) -> None:
    folder.mkdir(parents=True)
    for name, text in files.items():
        (folder / name).write_text(text)


def test_kept_runs_keep_apart_when_a_group_override_nests_their_folders(tmp_path):
    sweep = tmp_path / "sweep"
    # Hydra's job folders for `model/scheduler=cosine` at two label counts: same leaf, other parent.
    for labels in (30, 100):
        job = sweep / f"data.num_labels={labels},model" / "scheduler=cosine,seed=0"
        _run(job, **{"result.json": json.dumps({"labels": labels}), "vae.ckpt": "big"})
    curve = tmp_path / "curves" / "r1_s0" / "run"  # a time-to-accuracy output
    _run(curve, **{"result.json": "{}", "curve.json": "[]"})
    into = tmp_path / "kept"
    for folder in (sweep, tmp_path / "curves" / "r1_s0"):
        subprocess.run([sys.executable, SCRIPT, folder, "--into", into], check=True)
    kept = sorted(p.relative_to(into).as_posix() for p in into.rglob("*") if p.is_file())
    assert kept == [
        "data.num_labels=100,model.scheduler=cosine,seed=0/result.json",
        "data.num_labels=30,model.scheduler=cosine,seed=0/result.json",
        "r1_s0/curve.json",
        "r1_s0/result.json",
    ]
    assert json.loads((into / kept[1]).read_text()) == {"labels": 30}
