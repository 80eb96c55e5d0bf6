import json
import os
import signal
import subprocess
import time

import lightning as L
import pytest
import torch

import ssvae.train as train_module
from ssvae.errors import ConfigError
from ssvae.train import train
from tests.conftest import run_train, train_command, two_job_sweep

SMALL = ["model.hidden_dims=[32]", "model.z_dim=4", "data.num_labels=50"]


class InterruptAt(L.Callback):
    """Raise KeyboardInterrupt (what SIGINT does) at the end of one epoch."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if trainer.current_epoch == self.epoch:
            raise KeyboardInterrupt


def test_interrupted_job_resumes_and_a_finished_one_is_skipped(compose_cfg, tmp_path, monkeypatch):
    cfg = compose_cfg(*SMALL, "trainer.max_epochs=6")
    build = train_module.build_callbacks
    monkeypatch.setattr(
        train_module, "build_callbacks", lambda c, d: [*build(c, d), InterruptAt(epoch=2)]
    )
    started = time.perf_counter()
    with pytest.raises(SystemExit):  # Lightning's graceful shutdown after Ctrl+C
        train(cfg)
    first_segment_s = time.perf_counter() - started
    run = tmp_path / "run"
    assert not (run / "result.json").exists() and (run / "checkpoints" / "last.ckpt").is_file()

    monkeypatch.setattr(train_module, "build_callbacks", build)
    record = train(cfg)
    assert record["resumed_from"].endswith("last.ckpt") and record["epochs"] == 6
    # The minutes of the first segment's 3 epochs, from the checkpoint's Timer, count in the run's.
    assert 0 < record["resumed_time_s"] < first_segment_s
    stamp = (run / "result.json").stat().st_mtime_ns

    again = train(cfg)  # finished: skipped, the result file untouched
    assert again == json.loads((run / "result.json").read_text())
    assert (run / "result.json").stat().st_mtime_ns == stamp


@pytest.mark.parametrize(
    "averaging", [[], ["weight_averaging=ema", "weight_averaging.decay=0.9"]], ids=["plain", "ema"]
)
def test_resumed_job_matches_an_uninterrupted_one(compose_cfg, tmp_path, monkeypatch, averaging):
    # Batch order and sampling noise continue where they stopped, so resuming changes nothing;
    # with weight averaging, both the average and the weights being trained carry over.
    def cfg_in(name):
        cfg = compose_cfg(*SMALL, "trainer.max_epochs=5", "seed=3", *averaging)
        cfg.paths.output_dir = str(tmp_path / name)
        return cfg

    straight = train(cfg_in("straight"))
    build = train_module.build_callbacks
    monkeypatch.setattr(
        train_module, "build_callbacks", lambda c, d: [*build(c, d), InterruptAt(epoch=1)]
    )
    with pytest.raises(SystemExit):
        train(cfg_in("resumed"))
    monkeypatch.setattr(train_module, "build_callbacks", build)
    resumed = train(cfg_in("resumed"))
    assert resumed["resumed_from"] and resumed["epochs"] == straight["epochs"] == 5
    assert straight["resumed_time_s"] == 0 < resumed["resumed_time_s"]
    assert resumed["best_val_acc"] == straight["best_val_acc"]
    assert resumed["test_acc"] == straight["test_acc"]
    last = {
        name: torch.load(tmp_path / name / "checkpoints" / "last.ckpt", weights_only=True)
        for name in ("straight", "resumed")
    }
    states = ["state_dict", "current_model_state"] if averaging else ["state_dict"]
    for state in states:
        for key, value in last["straight"][state].items():
            assert torch.equal(value, last["resumed"][state][key]), (state, key)


def test_last_checkpoint_follows_every_epoch_not_only_the_best(compose_cfg, tmp_path):
    # A learning rate of 1e-12: validation accuracy never improves after epoch 0, so the best
    # checkpoint stays at epoch 0, while a job killed now must resume after its last epoch.
    record = train(compose_cfg(*SMALL, "trainer.max_epochs=3", "model.optimizer.lr=1e-12"))
    folder = tmp_path / "run" / "checkpoints"
    assert [p.name for p in folder.glob("best-*.ckpt")] == ["best-epoch=0.ckpt"]
    last = torch.load(folder / "last.ckpt", weights_only=True)
    assert last["epoch"] == 2 and last["global_step"] == record["steps"]


def test_changed_settings_do_not_reuse_a_result_or_checkpoint(compose_cfg, tmp_path):
    first = train(compose_cfg(*SMALL, "trainer.max_epochs=2"))
    second = train(compose_cfg(*SMALL, "trainer.max_epochs=3"))
    assert first["fingerprint"] != second["fingerprint"]
    assert second["epochs"] == 3 and second["resumed_from"] is None
    assert (tmp_path / "run" / "checkpoints" / "last.ckpt.stale").is_file()


def test_same_seed_same_subset_and_same_accuracy(compose_cfg, tmp_path):
    runs = []
    for name in ("a", "b"):
        cfg = compose_cfg(*SMALL, "trainer.max_epochs=3", "resume=false", "seed=5")
        cfg.paths.output_dir = str(tmp_path / name)
        runs.append(train(cfg))
    assert runs[0]["test_acc"] == runs[1]["test_acc"]
    assert runs[0]["best_val_acc"] == runs[1]["best_val_acc"]


def test_non_finite_loss_is_recorded_as_failed(compose_cfg, tmp_path):
    record = train(compose_cfg(*SMALL, "model.optimizer.lr=1e30", "trainer.max_epochs=3"))
    assert record["status"] == "failed"
    assert "non-finite loss" in record["error"] and "learning rate" in record["error"]
    saved = json.loads((tmp_path / "run" / "result.json").read_text())
    assert saved["status"] == "failed"


def test_checkpoint_of_another_data_set_or_unknown_origin_is_refused(compose_cfg, tmp_path):
    train(compose_cfg(*SMALL, "trainer.max_epochs=1"))
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    saved = torch.load(last, weights_only=True)
    assert saved["ssvae"]["dataset"] == "digits" and saved["ssvae"]["model"] == "m2"
    saved["ssvae"]["dataset"] = "mnist"
    other = tmp_path / "other.ckpt"
    torch.save(saved, other)
    with pytest.raises(ConfigError, match="saved for dataset='mnist'.*dataset='digits'"):
        train(compose_cfg(*SMALL, f"ckpt_path={other}"))
    torch.save({"state_dict": {}}, tmp_path / "plain.ckpt")
    with pytest.raises(ConfigError, match="not an ssvae checkpoint"):
        train(compose_cfg(*SMALL, f"ckpt_path={tmp_path / 'plain.ckpt'}"))
    (tmp_path / "junk.ckpt").write_bytes(b"not a checkpoint")
    with pytest.raises(ConfigError, match="not a checkpoint that loads with weights_only=True"):
        train(compose_cfg(*SMALL, f"ckpt_path={tmp_path / 'junk.ckpt'}"))


def _job_file(sweep, labels, name):
    """A file of the job with ``labels`` labels (its folder is named by all its overrides)."""
    return next(iter(sweep.glob(f"data.num_labels={labels},*/{name}")), None)


def test_sweep_killed_mid_job_resumes_and_counts_each_job_once(tmp_path):
    sweep = tmp_path / "sweep"
    proc = subprocess.Popen(
        train_command(*two_job_sweep(sweep, max_epochs=40)),
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 240
    while not (
        _job_file(sweep, 20, "result.json") and _job_file(sweep, 50, "checkpoints/last.ckpt")
    ):
        assert proc.poll() is None and time.monotonic() < deadline, "sweep ended too early"
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert _job_file(sweep, 50, "result.json") is None
    first_result = _job_file(sweep, 20, "result.json")
    stamp = first_result.stat().st_mtime_ns

    done = run_train(tmp_path, *two_job_sweep(sweep, max_epochs=40))
    assert done.returncode == 0, done.stderr[-3000:]
    assert first_result.stat().st_mtime_ns == stamp  # finished job skipped
    resumed = json.loads(_job_file(sweep, 50, "result.json").read_text())
    assert resumed["resumed_from"] and resumed["epochs"] == 40
    rows = json.loads((sweep / "results.json").read_text())
    assert [(r["num_labels"], r["runs"], r["failed"]) for r in rows] == [(20, 1, 0), (50, 1, 0)]
