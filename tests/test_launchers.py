import json
import re
from concurrent.futures import ProcessPoolExecutor

import pytest
from hydra import compose, initialize_config_dir

from ssvae.runs import DATA_FILE_KEYS, check_output_dir, is_plumbing
from ssvae.train import CONFIG_DIR
from tests.conftest import run_train, two_job_sweep


def _hydra_cfg(*overrides):
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return compose("config", overrides=list(overrides), return_hydra_config=True)


@pytest.mark.parametrize(
    ("preset", "target"),
    [
        ("parallel", "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher"),
        ("slurm", "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"),
    ],
)
def test_launcher_presets_compose(preset, target):
    launcher = _hydra_cfg(f"hydra/launcher={preset}").hydra.launcher
    assert launcher._target_ == target
    if preset == "slurm":
        assert launcher.timeout_min == 240 and launcher.max_num_timeout == 3


def test_ddp_trainer_config_picks_the_accelerator_itself():
    trainer = _hydra_cfg("trainer=ddp").trainer
    assert trainer.strategy == "ddp" and trainer.accelerator == "auto"
    assert trainer.devices == "auto"


def test_parallel_launcher_runs_a_sweep_and_reports(tmp_path):
    sweep = tmp_path / "sweep"
    result = run_train(tmp_path, *two_job_sweep(sweep, "hydra/launcher=parallel", "num_threads=1"))
    assert result.returncode == 0, result.stderr[-3000:]
    rows = json.loads((sweep / "results.json").read_text())
    assert [(r["num_labels"], r["runs"]) for r in rows] == [(20, 1), (50, 1)]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-m", "hydra/launcher=kubernetes"], "Available options in 'hydra/launcher'"),
        (["hydra.run.dir=/etc/hostname/run"], "output folder /etc/hostname/run is not writable"),
    ],
)
def test_bad_launcher_or_output_folder_fails_clearly(tmp_path, args, message):
    result = run_train(
        tmp_path,
        *args,
        timeout=120,
    )
    assert result.returncode != 0 and message in result.stderr
    assert "Traceback" not in result.stderr


def _check_many(folder) -> None:
    for _ in range(300):
        check_output_dir(folder)


def test_jobs_checking_one_output_folder_at_once_do_not_trip_each_other(tmp_path):
    # Two runs started in the same second share a folder check; a fixed probe file name made
    # one job's clean-up delete the other's probe ("not writable (No such file or directory)").
    with ProcessPoolExecutor(max_workers=3) as pool:
        for future in [pool.submit(_check_many, tmp_path) for _ in range(3)]:
            future.result()
    assert list(tmp_path.iterdir()) == []


def test_runs_and_sweeps_started_in_the_same_second_get_their_own_folders():
    hydra = _hydra_cfg().hydra
    # Stamped to the microsecond, so back-to-back runs or sweeps cannot share a folder.
    stamp = r"\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d-\d{6}"
    assert re.fullmatch(rf"outputs/runs/{stamp}", hydra.run.dir)
    assert re.fullmatch(rf"outputs/sweeps/{stamp}", hydra.sweep.dir)


def test_job_folder_names_leave_out_plumbing_only():
    excluded = _hydra_cfg().hydra.job.config.override_dirname.exclude_keys
    # A cache path (with its slashes) in a job folder's name would nest folders and split a
    # sweep's rows by where files live rather than by what was computed.
    assert {"paths.cache_dir", "data.root", "num_threads"} <= set(excluded)
    # Besides plumbing, only your own data's file paths: data.name names the data instead.
    assert all(is_plumbing(key) or key in DATA_FILE_KEYS for key in excluded)
