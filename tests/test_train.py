import json
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.errors import MissingConfigException
from hydra.utils import instantiate
from omegaconf import OmegaConf

from ssvae.config_checks import check_config
from ssvae.data.datamodule import SemiSupervisedDataModule
from ssvae.errors import ConfigError, DataError
from ssvae.precision import bf16_where_native
from ssvae.pretrain import cache_key, vae_precision
from ssvae.runs import fingerprint
from ssvae.train import CONFIG_DIR, train

FAST = ["model.hidden_dims=[64]", "model.z_dim=8", "trainer.max_epochs=25"]


def test_default_config_composes_and_instantiates(compose_cfg):
    cfg = compose_cfg()
    assert cfg.data.name == "digits" and cfg.model._target_.endswith("M2")
    assert cfg.model.z_dim == 50 and list(cfg.model.hidden_dims) == [500]
    assert cfg.data.seed == cfg.seed  # one seed controls the labeled subset too
    check_config(cfg)
    assert isinstance(instantiate(cfg.data), SemiSupervisedDataModule)


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_idx_data_configs_compose(compose_cfg, name):
    cfg = compose_cfg(f"data={name}", "data.num_labels=600", "seed=3")
    assert cfg.data.name == name and cfg.data.download and cfg.data.seed == 3
    check_config(cfg)


def test_unknown_data_set_or_model_lists_the_choices(compose_cfg):
    with pytest.raises(MissingConfigException, match="Available options") as info:
        compose_cfg("data=cifar")
    assert "mnist" in str(info.value)
    with pytest.raises(MissingConfigException, match="m2"):
        compose_cfg("model=m9")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["data.label_fraction=0.1"], "at most one"),
        (["data.num_labels=null", "data.label_fraction=1.5"], r"data.label_fraction=1.5.*\(0, 1\]"),
        (["data.num_labels=null", "data.label_fraction=0"], "data.label_fraction=0"),
        (["data.num_labels=0"], "data.num_labels=0 must be a positive"),
        (["data.unlabeled_batch_size=0"], "data.unlabeled_batch_size=0"),
        (["data.name=svhn"], "data.name='svhn' is not a built-in data set; allowed"),
        (["seed=-1"], "seed=-1"),
        (["trainer.max_epochs=0"], "trainer.max_epochs=0"),
        (["model.optimizer.lr=-1"], "model.optimizer.lr=-1 must be a positive number"),
        (["model=m1m2", "vae.model.optimizer.lr=0"], "vae.model.optimizer.lr=0 must be"),
        (["trainer.precision=fp8"], r"trainer.precision=fp8 is not known; allowed: .*bf16-mixed"),
        (["model=m1m2", "vae.max_epochs=0"], "vae.max_epochs=0 must be a positive integer"),
        (
            ["model/scheduler=cosine", "trainer.max_epochs=-1"],
            r"model.scheduler.T_max=-1 must be a positive number of epochs.*trainer.max_epochs",
        ),
        (["model=svm", "ckpt_path=last.ckpt"], "ckpt_path=last.ckpt cannot be used with model=svm"),
        (
            ["model=vat", "model.bn_stats=running", "weight_averaging=ema"],
            "weight_averaging=ema cannot be used with model.bn_stats=running",
        ),
    ],
)
def test_bad_config_fails_before_training_naming_the_field(compose_cfg, overrides, message):
    cfg = compose_cfg(*overrides)
    with pytest.raises(ConfigError, match=message):
        train(cfg)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["data.num_labels=5000"], "above the 1257"),
        (["data.num_labels=55"], "cannot be balanced"),
        (["data.num_labels=1250"], "needs 125 images of class"),
    ],
)
def test_label_requests_the_data_cannot_meet_fail_before_training(
    compose_cfg, tmp_path, overrides, message
):
    with pytest.raises(ConfigError, match=message):
        train(compose_cfg(*overrides))
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_short_m2_run_on_digits_learns(compose_cfg, tmp_path):
    record = train(compose_cfg(*FAST, "data.num_labels=50"))
    # Chance is 10 %; 50 labels and 25 small epochs reach 82-87 % on digits (seeds 0-2).
    assert record["status"] == "ok" and record["test_acc"] > 0.75
    assert record["num_labels"] == 50 and record["epochs"] == 25
    saved = json.loads((tmp_path / "run" / "result.json").read_text())
    assert saved["test_acc"] == record["test_acc"]
    assert (tmp_path / "run" / "checkpoints" / "last.ckpt").is_file()


def test_label_fraction_is_the_alternative_to_a_count(compose_cfg):
    cfg = compose_cfg(
        "data.num_labels=null", "data.label_fraction=0.04", "trainer.max_epochs=1", *FAST[:2]
    )
    record = train(cfg)
    assert record["num_labels"] == 50 and record["label_fraction"] == 0.04


def test_constructor_errors_arrive_unwrapped(compose_cfg):
    with pytest.raises(ConfigError, match=r"model.weighting='often'.*allowed"):
        train(compose_cfg("model.weighting=often"))


def test_data_root_that_is_a_file_or_missing(compose_cfg, tmp_path):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(DataError, match="is not a folder"):
        train(compose_cfg("data=mnist", f"data.root={a_file}"))
    with pytest.raises(DataError, match="not found under"):
        train(compose_cfg("data=mnist", f"data.root={tmp_path}", "data.download=false"))


def test_unwritable_output_folder(compose_cfg, tmp_path):
    (tmp_path / "file").write_text("x")
    cfg = compose_cfg()
    cfg.paths.output_dir = str(tmp_path / "file" / "run")
    with pytest.raises(ConfigError, match="not writable"):
        train(cfg)


def test_experiment_settings_win_over_the_primary_config(compose_cfg):
    # An experiment's top-level values (num_threads, sweep_name) must not be reset by config.yaml.
    compare = compose_cfg("experiment=digits_compare")
    assert compare.num_threads == 1
    table1 = compose_cfg("experiment=table1")
    assert (table1.sweep_name, table1.num_threads, table1.data.name) == ("table1_v2", 1, "mnist")
    assert table1.trainer.precision == bf16_where_native() and table1.vae.max_epochs == 55
    check_config(table1)
    # The command line still wins over the experiment.
    assert compose_cfg("experiment=table1", "sweep_name=mine").sweep_name == "mine"


def test_m2_mnist_experiment_is_sdgms_setting_without_a(compose_cfg):
    m2 = compose_cfg("experiment=m2_mnist")
    adgm = compose_cfg("experiment=adgm_mnist", "model=sdgm")
    check_config(m2)
    assert m2.model._target_.endswith("M2") and m2.data.name == "mnist"
    for key in ("z_dim", "hidden_dims", "activation", "init", "binarize", "weighting"):
        assert m2.model[key] == adgm.model[key], key
    assert m2.model.optimizer.lr == adgm.model.optimizer.lr
    assert m2.model.scheduler == adgm.model.scheduler
    assert m2.data.unlabeled_batch_size == adgm.data.unlabeled_batch_size == 100
    # ADGM clips through its own hook; M2 through the trainer, to the same norm.
    assert m2.trainer.gradient_clip_val == adgm.model.gradient_clip_norm == 5
    # Table 1's M2 sweep runs that recipe at Adam 1e-3 under a one-hour cap: a job's digest
    # equals the single run's with the same rate and cap, so a curve run made first is a
    # finished job of the sweep; at the authors' 3e-4 it is another job.
    table = compose_cfg("experiment=table1_m2", "seed=1")
    assert table.sweep_name == "table1_m2" and table.trainer.max_time == "00:01:00:00"
    assert table.model.optimizer.lr == 1e-3
    single = ("experiment=m2_mnist", "seed=1", "trainer.max_time=00:01:00:00")
    assert fingerprint(table) == fingerprint(compose_cfg(*single, "model.optimizer.lr=1e-3"))
    assert fingerprint(table) != fingerprint(compose_cfg(*single))


def test_sdgm_100_sweep_is_the_published_sdgm_at_adam_1e3_with_a_cosine_for_two_hours(
    compose_cfg,
):
    # The SDGM table's jobs: experiment=adgm_mnist model=sdgm with only the rate and its cosine
    # over 100 epochs, the per-epoch evaluation's draws of a and the two-hour cap changed, so a
    # single run with those overrides is a finished job of the sweep.
    job = compose_cfg("experiment=sdgm_100", "seed=2")
    check_config(job)
    assert job.model._target_.endswith("SDGM") and job.sweep_name == "sdgm_100"
    assert job.model.optimizer.lr == 1e-3 and job.trainer.max_time == "00:02:00:00"
    assert job.model.scheduler._target_.endswith("CosineAnnealingLR")
    assert job.model.scheduler.T_max == job.trainer.max_epochs == 100
    single = compose_cfg(
        "experiment=adgm_mnist",
        "model=sdgm",
        "seed=2",
        "model.eval_samples=20",
        "model.optimizer.lr=1e-3",
        "model/scheduler=cosine",
        "trainer.max_epochs=100",
        "trainer.max_time=00:02:00:00",
    )
    assert fingerprint(job) == fingerprint(single)


def test_sdgm_spread_crosses_the_label_draw_with_the_seed(compose_cfg):
    # Its jobs with data.seed equal to seed are sdgm_100's finished runs (same digest); the
    # others keep the labels of data.seed and change only the seed, or the reverse.
    same = compose_cfg("experiment=sdgm_spread", "seed=1", "data.seed=1")
    assert same.sweep_name == "sdgm_spread"
    assert fingerprint(same) == fingerprint(compose_cfg("experiment=sdgm_100", "seed=1"))
    crossed = compose_cfg("experiment=sdgm_spread", "seed=2", "data.seed=1")
    assert crossed.data.seed == 1 and crossed.seed == 2
    assert fingerprint(crossed) != fingerprint(same)


def test_m2_vat_bn_100_is_the_screened_m2_vat_setting_on_vats_network(compose_cfg):
    # The experiment names the command line the screens ran (docs/baselines.md), so a full run
    # and its screen differ only in their budget.
    job = compose_cfg("experiment=m2_vat_bn_100", "seed=1", "model.bound=false")
    check_config(job)
    assert job.model._target_.endswith("M2VAT") and job.sweep_name == "m2_vat_bn_100"
    assert job.model.scheduler.T_max == job.trainer.max_epochs == 170
    assert job.trainer.max_time == "00:03:00:00" and job.model.bound is False
    command_line = compose_cfg(
        "experiment=m2_vat_100",
        "seed=1",
        "model.bound=false",
        "model.classifier_dims=[1200,600,300,150]",
        "model.classifier_noise_std=0.5",
        "model.epsilon=5.0",
        "model.binarize=false",
        "data.unlabeled_batch_size=250",
        "model.optimizer.lr=2e-3",
        "model/scheduler=cosine",
        "trainer.max_epochs=170",
        "model.alpha_scale=1.0",
        "trainer.max_time=00:03:00:00",
    )
    assert fingerprint(job) == fingerprint(command_line)


def test_m2_vat_entmin_100_is_m2_vat_bn_100_plus_entmin(compose_cfg):
    job = compose_cfg("experiment=m2_vat_entmin_100", "seed=2", "model.bound=true")
    check_config(job)
    assert job.model.entropy_weight == 1.0 and job.sweep_name == "m2_vat_entmin_100"
    without = compose_cfg("experiment=m2_vat_bn_100", "seed=2", "model.bound=true")
    assert fingerprint(job) != fingerprint(without)
    assert fingerprint(job) == fingerprint(
        compose_cfg(
            "experiment=m2_vat_bn_100", "seed=2", "model.bound=true", "+model.entropy_weight=1.0"
        )
    )


def test_m1m2_100_sweep_is_the_m1m2_recipe_over_600_epochs(compose_cfg):
    job = compose_cfg("experiment=m1m2_100", "seed=1")
    check_config(job)
    assert job.model._target_.endswith("M1M2") and job.sweep_name == "m1m2_100"
    assert (job.data.name, job.data.num_labels) == ("mnist", 100)
    assert job.model.scheduler.T_max == job.trainer.max_epochs == 600
    assert "learning_curve" in job.callbacks
    # Only the schedule's length differs from the recipe as table1 runs it (one of its jobs).
    single = compose_cfg(
        "model=m1m2",
        "data=mnist",
        "data.num_labels=100",
        "seed=1",
        "vae.max_epochs=55",
        # As the experiment resolves it on this machine: bf16 where the CPU computes it natively.
        f"trainer.precision={bf16_where_native()}",
        "trainer.max_epochs=600",
        "callbacks=learning_curve",
    )
    assert fingerprint(job) == fingerprint(single)


ABLATION_UNDOES = {
    "batch500": {"data.unlabeled_batch_size": 500},
    "lr1e-3": {"model.optimizer.lr": 1e-3},
    "shallow_softplus": {"model.hidden_dims": [500], "model.activation": "softplus"},
    "z50": {"model.z_dim": 50},
    "grey": {"model.binarize": False},
    "torch_init": {"model.init": "torch"},
    "no_clip": {"trainer.gradient_clip_val": None},
    "none": {},
}


def test_m2_ablation_undoes_one_setting_per_job(compose_cfg):
    sweep = OmegaConf.load(Path(CONFIG_DIR) / "experiment" / "m2_ablation.yaml")
    options = sweep.hydra.sweeper.params["+m2_ablation"].split(",")
    files = [path.stem for path in (Path(CONFIG_DIR) / "m2_ablation").glob("*.yaml")]
    # every file is swept, none twice, and each is checked below
    assert sorted(options) == sorted(files) == sorted(ABLATION_UNDOES)
    recipe = compose_cfg("experiment=m2_mnist", "trainer.max_time=00:00:30:00")
    for option, undone in ABLATION_UNDOES.items():
        job = compose_cfg("experiment=m2_ablation", f"+m2_ablation={option}")
        for key, value in undone.items():
            assert OmegaConf.select(job, key) == value != OmegaConf.select(recipe, key), key
            OmegaConf.update(job, key, OmegaConf.select(recipe, key))
        # With the undone settings put back, the job is the 30-minute recipe itself.
        assert fingerprint(job) == fingerprint(recipe), option


def test_m1m2_recipe_defaults_and_m2_defaults(compose_cfg):
    m1m2 = compose_cfg("model=m1m2", "trainer.max_epochs=150")
    assert m1m2.model.weighting == "paper" and m1m2.model.optimizer.lr == 3e-3
    assert m1m2.model.scheduler._target_.endswith("CosineAnnealingLR")
    assert m1m2.model.scheduler.T_max == 150  # the cosine follows the run's length
    m2 = compose_cfg()
    assert m2.model.weighting == "balanced" and m2.model.scheduler._target_.endswith("ConstantLR")


def test_tensorboard_logger_writes_events_beside_the_csv_logs(compose_cfg, tmp_path):
    cfg = compose_cfg(
        "logger=tensorboard", "trainer.max_epochs=1", "model.hidden_dims=[16]", "model.z_dim=2"
    )
    train(cfg)
    run = tmp_path / "run"
    assert (run / "logs" / "metrics.csv").is_file()
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))


def test_mlflow_logger_records_settings_and_curves_in_a_local_store(compose_cfg, tmp_path):
    from mlflow.tracking import MlflowClient

    store = tmp_path / "mlflow.db"
    common = ["logger=mlflow", f"paths.mlflow_db={store}", "model.hidden_dims=[16]"]
    first = train(compose_cfg(*common, "model.z_dim=2", "trainer.max_epochs=2"))
    client = MlflowClient(tracking_uri=f"sqlite:///{store}")
    (experiment,) = [e for e in client.search_experiments() if e.name == "ssvae"]
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.data.params["z_dim"] == "2"  # the model's hyperparameters
    history = client.get_metric_history(run.info.run_id, "val/acc")
    assert len(history) == 2  # one point per epoch
    assert run.data.metrics["test/acc"] == pytest.approx(first["test_acc"])
    assert (tmp_path / "run" / "logs" / "metrics.csv").is_file()  # the CSV logs stay


def test_vae_schedule_is_opt_in_and_part_of_the_cache_key(compose_cfg):
    plain = compose_cfg("model=m1m2", "vae.max_epochs=7")
    assert "scheduler" not in plain.vae.model  # so caches made before it keep their keys
    cosine = compose_cfg("model=m1m2", "vae.max_epochs=7", "vae/scheduler=cosine")
    vae = instantiate(cosine.vae.model, x_dim=4, _convert_="all")
    sched = vae.configure_optimizers()["lr_scheduler"]["scheduler"]
    assert isinstance(sched, torch.optim.lr_scheduler.CosineAnnealingLR) and sched.T_max == 7
    assert "lr_scheduler" not in instantiate(plain.vae.model, x_dim=4).configure_optimizers()
    # A VAE trained on another schedule is another VAE: it must not come from the same cache.
    keys = {cache_key("digits", 0, cfg.vae, "32-true") for cfg in (plain, cosine)}
    assert len(keys) == 2


def test_m1_can_keep_its_precision_while_m2_trains_in_another(compose_cfg):
    common = ("model=m1m2", "data=mnist", "vae.max_epochs=55")
    bf16 = compose_cfg(*common, "trainer.precision=bf16-mixed")
    split = compose_cfg(*common, "trainer.precision=32-true", "vae.precision=bf16-mixed")
    fp32 = compose_cfg(*common, "trainer.precision=32-true")
    keys = [cache_key("mnist", 0, c.vae, vae_precision(c.vae, c.trainer)) for c in (bf16, split)]
    # The key the MNIST VAEs of docs/runs were cached under before vae.precision existed: an fp32
    # M2 reuses them, and a plain fp32 run gets a VAE of its own.
    assert keys == ["ddeb79947ef5", "ddeb79947ef5"]
    assert cache_key("mnist", 0, fp32.vae, vae_precision(fp32.vae, fp32.trainer)) != keys[0]
    assert fingerprint(split) != fingerprint(fp32)


def test_compile_trains_the_same_job_and_counts_as_plumbing(compose_cfg):
    # Lightning compiles the *_step methods of a compiled module; logging stays eager.
    cfg = compose_cfg("compile=true", "trainer.max_epochs=1", "model.hidden_dims=[16]")
    record = train(cfg)
    assert record["status"] == "ok" and 0.0 <= record["test_err"] <= 1.0
    assert record["fingerprint"] == fingerprint(
        compose_cfg("trainer.max_epochs=1", "model.hidden_dims=[16]")
    )


def test_main_job_is_the_digits_sweep_at_50_epochs(compose_cfg):
    # The README's command 1: the same models, labels, seeds and launcher as digits_sweep, which
    # stays at 100 epochs so that the lab notes' commands still compose to what they ran.
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        main = compose("config", overrides=["experiment=digits_main"], return_hydra_config=True)
        sweep = compose("config", overrides=["experiment=digits_sweep"], return_hydra_config=True)
    assert (main.trainer.max_epochs, sweep.trainer.max_epochs) == (50, 100)
    assert main.hydra.sweeper.params == sweep.hydra.sweeper.params
    assert main.hydra.sweeper.params.model == "m2,ladder,supervised"
    assert main.hydra.launcher._target_.endswith("JoblibLauncher") and main.num_threads == 1
    check_config(compose_cfg("experiment=digits_main"))
