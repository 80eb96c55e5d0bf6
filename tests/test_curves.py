import json
import math
import os
import subprocess
import sys
import tarfile

import pytest
import torch

from ssvae.curves import (
    CURVE_FILE,
    LearningCurve,
    curve_styles,
    curve_table,
    distinct_labels,
    error_at,
    last_epochs_table,
)
from ssvae.curves import main as curves_main
from ssvae.errors import ConfigError
from ssvae.models.base import optimizer_config
from ssvae.train import train
from tests.conftest import REPO, load_script

TINY = ["model.hidden_dims=[32]", "model.z_dim=4", "num_threads=1"]


def run_script(name: str, *args: str, cwd) -> None:
    """Run ``scripts/<name>`` as a user would, failing the test if it fails."""
    command = [sys.executable, str(REPO / "scripts" / name), *args]
    subprocess.run(command, check=True, cwd=cwd, capture_output=True, timeout=300)


# With weight averaging, validation, the checkpoints and the final test score the average: the
# curve's test error must be the average's too, or it would disagree with the run's result.
@pytest.mark.parametrize(
    "averaging", [[], ["weight_averaging=ema", "weight_averaging.decay=0.9"]], ids=["plain", "ema"]
)
def test_curve_records_every_epoch_and_checkpoint_choice_stays_on_validation(
    compose_cfg, tmp_path, averaging
):
    cfg = compose_cfg(*TINY, "callbacks=learning_curve", "trainer.max_epochs=4", *averaging)
    record = train(cfg)
    curve = json.loads((tmp_path / "run" / CURVE_FILE).read_text())
    points = curve["points"]
    assert [p["epoch"] for p in points] == [1, 2, 3, 4]
    minutes = [p["minutes"] for p in points]
    assert minutes == sorted(minutes) and minutes[0] > 0
    assert all(0 <= p["val_err"] <= 1 and 0 <= p["test_err"] <= 1 for p in points)
    # The run's best checkpoint is the epoch with the lowest validation error, whatever the
    # test error did; its test error is the one the curve recorded for that epoch.
    best = min(points, key=lambda p: (p["val_err"], p["epoch"]))
    assert record["best_val_acc"] == pytest.approx(1 - best["val_err"], abs=1e-6)
    assert record["test_err"] == pytest.approx(best["test_err"], abs=1e-6)
    # Recording the curve is not a variant of its own in the results table.
    assert record["variant"] == ""


@pytest.mark.parametrize(
    "model",
    [["model=vat", "model.hidden_dims=[32,32]", "data.num_labels=50"], TINY],
    ids=["vat_with_batch_norm", "m2"],
)
def test_an_averaged_run_also_records_the_trained_weights_as_a_plain_run_would(
    compose_cfg, tmp_path, model
):
    # One run measures what the average buys: beside the average's errors, the curve holds those
    # of the weights being trained, and scoring them (batch norm re-estimated for them, then put
    # back) leaves training as it was: they equal a run without averaging, epoch by epoch.
    common = [*model, "callbacks=learning_curve", "trainer.max_epochs=3"]
    train(compose_cfg(*common, "weight_averaging=ema", "weight_averaging.decay=1.0"))
    averaged = json.loads((tmp_path / "run" / CURVE_FILE).read_text())["points"]
    train(compose_cfg(*common, "resume=false"))
    plain = json.loads((tmp_path / "run" / CURVE_FILE).read_text())["points"]
    assert [p["test_err_trained"] for p in averaged] == [p["test_err"] for p in plain]
    assert [p["val_err_trained"] for p in averaged] == pytest.approx([p["val_err"] for p in plain])
    # decay 1 keeps the weights after the first step: far worse than what three epochs learn.
    assert averaged[-1]["test_err"] > averaged[-1]["test_err_trained"] + 0.2
    assert not any("test_err_trained" in p for p in plain)


def test_budget_stops_training(compose_cfg, tmp_path):
    cfg = compose_cfg(
        *TINY,
        "callbacks=learning_curve",
        "callbacks.learning_curve.budget_min=1e-9",
        "trainer.max_epochs=50",
    )
    record = train(cfg)
    assert record["epochs"] == 1
    # The device is recorded beside the numbers (the leaderboard shows it).
    assert record["device"].startswith("CPU: ") and "thread" in record["device"]
    assert len(json.loads((tmp_path / "run" / CURVE_FILE).read_text())["points"]) == 1


def test_budget_must_be_positive():
    with pytest.raises(ConfigError, match="budget_min=0 must be > 0"):
        LearningCurve(budget_min=0)


def test_cosine_schedule_is_stepped_per_epoch():
    params = [torch.nn.Parameter(torch.zeros(1))]
    config = optimizer_config(
        params,
        lambda p: torch.optim.Adam(p, lr=1.0),
        lambda opt: torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=4),
    )
    assert config["lr_scheduler"]["interval"] == "epoch"
    sched = config["lr_scheduler"]["scheduler"]
    lrs = []
    for _ in range(4):
        config["optimizer"].step()
        sched.step()
        lrs.append(config["optimizer"].param_groups[0]["lr"])
    # lr_t = (1 + cos(pi t / T)) / 2 for T = 4
    assert lrs == pytest.approx([(1 + math.cos(math.pi * t / 4)) / 2 for t in range(1, 5)])
    assert "lr_scheduler" not in optimizer_config(params, lambda p: torch.optim.SGD(p, lr=1), None)


def test_time_to_accuracy_script_writes_json_and_png(tmp_path):
    out = tmp_path / "tta"
    run_script(
        "time_to_accuracy.py",
        "--budget-min=5",
        f"--out={out}",
        "--",
        *TINY,
        "trainer.max_epochs=3",
        "trainer.enable_progress_bar=false",
        cwd=tmp_path,
    )
    summary = json.loads((out / "time_to_accuracy.json").read_text())
    assert summary["dataset"] == "digits" and summary["epochs"] == 3
    assert len(summary["points"]) == 3 and 0 <= summary["test_err"] <= 1
    png = (out / "time_to_accuracy.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 10_000


def test_error_at_reports_the_best_validation_epoch_so_far():
    curve = {
        "points": [
            {"epoch": 1, "minutes": 1.0, "val_err": 0.30, "test_err": 0.31},
            {"epoch": 2, "minutes": 2.0, "val_err": 0.20, "test_err": 0.25},
            {"epoch": 3, "minutes": 3.0, "val_err": 0.20, "test_err": 0.10},  # tie: keep epoch 2
            {"epoch": 4, "minutes": 4.0, "val_err": 0.25, "test_err": 0.05},  # worse validation
            {"epoch": 5, "minutes": 5.0, "val_err": 0.10, "test_err": 0.12},
        ]
    }
    assert error_at(curve, 0.5) is None
    assert error_at(curve, 1.5)["epoch"] == 1
    assert error_at(curve, 4.5)["epoch"] == 2
    assert error_at(curve, 60)["epoch"] == 5
    table = curve_table([("run", curve)], [1, 4.5, 60])
    assert "| run | 31.00 | 25.00 | 12.00 | 5 | 5.0 |" in table
    # By epoch: the same choice whatever the run's minutes were. "slow" is the curve above at
    # 10 minutes per epoch: by minutes it has nothing at 4.5, by epoch the same rows as before.
    slow = {"points": [{**p, "minutes": 10 * p["minutes"]} for p in curve["points"]]}
    assert error_at(slow, 4, by="epoch")["epoch"] == 2
    assert error_at(slow, 4.5) is None  # by minutes, no epoch had ended yet
    assert "| run | 31.00 | 25.00 | 12.00 | 5 | 50.0 |" in curve_table(
        [("run", slow)], [1, 4, 5], by="epoch"
    )
    with pytest.raises(ValueError, match="by='steps'"):
        error_at(curve, 1, by="steps")


def test_last_epochs_table_summarises_the_tail_without_model_selection():
    errors = [0.30, 0.12, 0.10, 0.14, 0.11]  # epoch 3 is best on test, but no choosing here
    points = [
        {"epoch": e, "minutes": float(e), "val_err": 0.5 - 0.1 * e, "test_err": t}
        for e, t in enumerate(errors, start=1)
    ]
    table = last_epochs_table([("run", {"points": points}), ("empty", {"points": []})], 3)
    # Epochs 3-5: final 11.00, mean (10 + 14 + 11) / 3 = 11.67, range 10.00-14.00; validation
    # 20, 10, 0 % -> mean 10.00.
    assert "| run | 11.00 | 11.67 | 10.00–14.00 | 3–5 | 10.00 |" in table
    assert "| empty | — | — | — | 0 | — |" in table
    # Asking for more epochs than the run has summarises all of them.
    assert "| run | 11.00 | 15.40 | 10.00–30.00 | 1–5 | 20.00 |" in last_epochs_table(
        [("run", {"points": points})], 10
    )
    with pytest.raises(ValueError, match="count=0"):
        last_epochs_table([("run", {"points": points})], 0)


def test_last_epochs_table_means_runs_that_differ_only_in_their_seed():
    def curve(test: float, val: float) -> dict:
        return {"points": [{"epoch": 1, "minutes": 1.0, "val_err": val, "test_err": test}]}

    runs = [
        ("bound=True,seed=0", curve(0.010, 0.012)),
        ("bound=True,seed=1", curve(0.011, 0.013)),
        ("bound=True,seed=1, trained weights", curve(0.014, 0.016)),
        ("bound=False,seed=0", curve(0.020, 0.030)),  # one seed: no mean of its own
        ("solo", curve(0.5, 0.5)),
    ]
    table = last_epochs_table(runs, 10)
    assert "| bound=True | 2 | 1.050 | 1.250 |" in table
    assert "| bound=True, trained weights" not in table.split("runs, over seeds")[1]
    assert "| bound=False |" not in table and "| solo |" in table
    # Without two runs of one setting, no second table.
    assert "over seeds" not in last_epochs_table(runs[3:], 10)


def test_curve_styles_give_each_arm_over_seeds_one_colour_and_one_legend_entry():
    labels = [
        "bound=True,seed=0",
        "bound=True,seed=0, trained weights",
        "bound=False,seed=0",
        "bound=True,seed=1",
        "bound=True,seed=1, trained weights",
        "bound=False,seed=1",
        "ladder",  # no seed: a colour and an entry of its own
        "bound=None,seed=0",  # the only run of its arm: its own label
    ]
    assert curve_styles(labels) == [
        (0, "bound=True (2 seeds)"),
        (1, "bound=True, trained weights (2 seeds)"),
        (2, "bound=False (2 seeds)"),
        (0, None),
        (1, None),
        (2, None),
        (3, "ladder"),
        (4, "bound=None,seed=0"),
    ]
    # Runs with no seed in their labels keep one colour each, as before, even if alike.
    assert curve_styles(["a", "b", "a"]) == [(0, "a"), (1, "b"), (2, "a")]


@pytest.mark.parametrize("precision", ["fp32", "bf16-true"])
def test_bench_reports_flops_and_the_matmul_bound(tmp_path, precision):
    out = tmp_path / "bench.json"
    run_script(
        "bench.py",
        "--models=m1m2",
        f"--precisions={precision}",
        "--threads=1",
        "--unlabeled=20",
        "--seconds=0.2",
        "--warmup=1",
        f"--json={out}",
        cwd=tmp_path,
    )
    (row,) = json.loads(out.read_text())
    assert (row["model"], row["precision"], row["unlabeled_batch"]) == ("m1m2", precision, 20)
    # FLOPs of the step: at least the forward + backward matmuls of q(z|x,y) and p(x|y,z) over
    # all 10 classes of 20 unlabeled images plus 100 labeled ones (each counted 3x: fwd + bwd).
    rows = 10 * 20 + 100
    least = 3 * 2 * rows * (500 * 100 + 50 * 500 + 500 * 100)
    assert row["step_gflop"] * 1e9 >= least
    assert row["images_per_s"] > 0 and row["x_bound"] > 0 and row["matmul_gflops"] > 0
    assert 0 < row["matmul_share"] < 1


def test_curves_cli_shows_an_averaged_runs_trained_weights_as_a_row_of_its_own(tmp_path, capsys):
    points = [
        {"epoch": 1, "minutes": 1.0, "val_err": 0.3, "test_err": 0.31},
        {"epoch": 2, "minutes": 2.0, "val_err": 0.2, "test_err": 0.21},
    ]
    for p, (val, test) in zip(points, [(0.1, 0.12), (0.15, 0.16)], strict=True):
        p.update(val_err_trained=val, test_err_trained=test)
    (tmp_path / "ema").mkdir()
    (tmp_path / "ema" / CURVE_FILE).write_text(json.dumps({"points": points}))
    curves_main([str(tmp_path / "ema"), f"--out={tmp_path / 'c.png'}", "--at-epoch", "2"])
    out = capsys.readouterr().out
    # Each chosen on its own validation: the average at epoch 2, the trained weights at 1.
    assert "| ema | 21.00 | 2 | 2.0 |" in out
    assert "| ema, trained weights | 12.00 | 2 | 2.0 |" in out
    # --last: the final epochs of each, with no choosing on validation.
    curves_main([str(tmp_path / "ema"), f"--out={tmp_path / 'c.png'}", "--last", "2"])
    out = capsys.readouterr().out
    assert "| ema | 21.00 | 26.00 | 21.00–31.00 | 1–2 | 25.00 |" in out
    assert "| ema, trained weights | 16.00 | 14.00 | 12.00–16.00 | 1–2 | 12.50 |" in out
    with pytest.raises(SystemExit, match="--last 0; allowed: 1 or more epochs"):
        curves_main([str(tmp_path / "ema"), "--last", "0"])


def test_curves_cli_draws_runs_and_refuses_folders_without_a_curve(tmp_path, capsys):
    curve = {"points": [{"epoch": 1, "minutes": 1.0, "val_err": 0.2, "test_err": 0.25}]}
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / CURVE_FILE).write_text(json.dumps(curve))
    out = tmp_path / "c.png"
    curves_main([str(tmp_path / "a"), str(tmp_path / "b"), f"--out={out}", "--at", "1"])
    assert out.read_bytes().startswith(b"\x89PNG")
    assert "| a | 25.00 | 1 | 1.0 |" in capsys.readouterr().out
    curves_main([str(tmp_path / "a"), f"--out={out}", "--at-epoch", "1"])
    assert "| run | epoch 1 | epochs | minutes |" in capsys.readouterr().out
    with pytest.raises(SystemExit, match=f"no {CURVE_FILE} in .*nothing"):
        curves_main([str(tmp_path / "nothing"), f"--out={tmp_path / 'd.png'}"])
    with pytest.raises(SystemExit, match="one --labels entry per run"):
        curves_main([str(tmp_path / "a"), "--labels", "x", "y"])
    assert not (tmp_path / "d.png").exists()


def test_default_labels_are_the_overrides_in_which_sweep_folders_differ(tmp_path, capsys):
    sweep = ["experiment=m2_ladder_100,model.hidden_dims=[32,32],seed=" + s for s in "01"]
    assert distinct_labels([tmp_path / name for name in sweep]) == ["seed=0", "seed=1"]
    # Nothing tells them apart (or one differs by nothing): the folders' whole names.
    odd = ["experiment=x,seed=0,model.bound=False", "experiment=x,seed=0"]
    assert distinct_labels([tmp_path / name for name in odd]) == odd
    alike = [tmp_path / "m1m2" / "run", tmp_path / "m2" / "run"]  # time_to_accuracy.py's
    assert distinct_labels(alike) == ["m1m2/run", "m2/run"]
    curve = {"points": [{"epoch": 1, "minutes": 1.0, "val_err": 0.2, "test_err": 0.25}]}
    for name in sweep:
        (tmp_path / name).mkdir()
        (tmp_path / name / CURVE_FILE).write_text(json.dumps(curve))
    runs = [str(tmp_path / name) for name in sweep]
    curves_main([*runs, f"--out={tmp_path / 'c.png'}", "--at-epoch", "1"])
    assert "| seed=1 | 25.00 | 1 | 1.0 |" in capsys.readouterr().out


def test_gpu_screen_runs_every_variant_and_seed_and_summarises(tmp_path):
    # ACCEL=cpu: the script's dry run; on a GPU machine the same runs go to the GPU at once.
    env = {
        **os.environ,
        "OUT": str(tmp_path / "out"),
        "WORK": str(tmp_path / "work"),
        "CACHE": str(tmp_path / "cache"),
        "SEEDS": "0",
        "PY": sys.executable,
        "ACCEL": "cpu",
        "PRECISION": "32-true",
    }
    tiny = " ".join([*TINY, "trainer.max_epochs=2"])
    subprocess.run(
        ["bash", str(REPO / "scripts" / "gpu_screen.sh"), "--budget-min=5", "--",
         f"base:{tiny}", f"heavier:{tiny} model.alpha_scale=1"],
        check=True, env=env, capture_output=True, text=True,
    )  # fmt: skip
    summary = (tmp_path / "out" / "summary.md").read_text().splitlines()
    rows = {line.split("|")[1].strip(): line for line in summary[2:]}
    assert set(rows) == {"base_s0", "heavier_s0"}
    assert all(line.split("|")[2].strip() == "2" for line in rows.values())  # epochs
    with tarfile.open(tmp_path / "out" / "screen.tar.gz") as tar:
        names = tar.getnames()
    assert any(n.endswith("base_s0/time_to_accuracy.json") for n in names)
    assert not any(n.endswith(".ckpt") for n in names)


def test_weight_averaging_checkpoints_hold_the_average_beside_the_trained_weights(
    compose_cfg, tmp_path
):
    # decay 1: the average stays at the weights after the first step, while training goes on.
    cfg = compose_cfg(
        *TINY, "trainer.max_epochs=3", "weight_averaging=ema", "weight_averaging.decay=1.0"
    )
    record = train(cfg)
    last = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)
    averaged, current = last["state_dict"], last["current_model_state"]
    moved = [k for k in averaged if not torch.equal(averaged[k], current[k])]
    assert moved and all(k.startswith(("encoder", "decoder", "classifier")) for k in moved)
    # Nearly untrained weights score far worse than what three epochs learn without averaging.
    plain = train(compose_cfg(*TINY, "trainer.max_epochs=3", "resume=false"))
    assert record["test_err"] > plain["test_err"] + 0.2


@pytest.mark.parametrize("model", ["m2_vat", "m2_ladder"])
def test_bench_no_bound_variant_is_the_same_network_without_the_bound(model):
    bench = load_script("bench")
    device = torch.device("cpu")
    with_bound, _, x_dim = bench.build(model, device)
    without, _, _ = bench.build(f"{model}_no_bound", device)
    assert (with_bound.bound, without.bound) == (True, False)
    # The same networks: the ablation differs only in what the loss uses.
    assert [p.shape for p in with_bound.parameters()] == [p.shape for p in without.parameters()]
    batch = bench.make_batch(x_dim, 8, False, device)
    assert {"elbo_labeled", "elbo_unlabeled"} <= set(with_bound.loss_terms(batch))
    assert not {"elbo_labeled", "elbo_unlabeled"} & set(without.loss_terms(batch))
    # The recorded matmul shapes (the bound's rate) cover the bound's networks only with it.
    shapes = bench.step_shapes(with_bound, batch)
    assert len(shapes) > len(bench.step_shapes(without, batch))
    assert any(rows == 10 * 8 for rows, _, _ in shapes)  # U(x): every class of the 8 images
