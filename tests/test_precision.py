import pytest
import torch

from ssvae import precision
from ssvae.config_checks import check_config
from ssvae.precision import bf16_where_native
from ssvae.runs import fingerprint

MNIST_RECIPES = ["table1", "table1_m2", "m2_mnist", "adgm_mnist", "sdgm_100", "m1m2_100"]


def test_bf16_only_on_a_cpu_that_computes_it_natively(cpu_bf16):
    cpu_bf16(True)
    assert precision.cpu_has_native_bf16()
    assert bf16_where_native("auto") == bf16_where_native("cpu") == "bf16-mixed"
    cpu_bf16(False)
    assert not precision.cpu_has_native_bf16()
    assert bf16_where_native("auto") == bf16_where_native("cpu") == "32-true"


def test_a_gpu_keeps_fp32_even_beside_a_bf16_cpu(cpu_bf16, monkeypatch):
    cpu_bf16(True)
    assert bf16_where_native("gpu") == bf16_where_native("cuda") == "32-true"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert bf16_where_native("auto") == "32-true"  # Lightning's auto picks the GPU
    assert bf16_where_native("cpu") == "bf16-mixed"


@pytest.mark.parametrize("native", [True, False])
def test_mnist_recipes_resolve_to_this_machines_precision(compose_cfg, cpu_bf16, native):
    cpu_bf16(native)
    expected = "bf16-mixed" if native else "32-true"
    for name in MNIST_RECIPES:
        cfg = compose_cfg(f"experiment={name}")
        assert cfg.trainer.precision == expected, name
        check_config(cfg)
    # The CPU of a GPU machine follows trainer.accelerator; the command line still wins.
    on_cpu = compose_cfg("experiment=table1", "trainer.accelerator=cpu")
    assert on_cpu.trainer.precision == expected
    pinned = compose_cfg("experiment=table1", "trainer.precision=32-true")
    assert pinned.trainer.precision == "32-true"
    # Digits and the plain default stay in fp32 whatever the CPU.
    assert compose_cfg().trainer.precision == "32-true"
    assert compose_cfg("experiment=digits_sweep").trainer.precision == "32-true"


def test_runs_resolved_differently_have_different_digests(compose_cfg, cpu_bf16):
    cpu_bf16(True)
    bf16 = fingerprint(compose_cfg("experiment=table1"))
    assert bf16 == fingerprint(compose_cfg("experiment=table1", "trainer.precision=bf16-mixed"))
    cpu_bf16(False)
    fp32 = fingerprint(compose_cfg("experiment=table1"))
    assert fp32 == fingerprint(compose_cfg("experiment=table1", "trainer.precision=32-true"))
    assert fp32 != bf16


@pytest.mark.parametrize("model", ["m2", "m1m2", "m1"])
def test_bf16_true_trains_evaluates_and_predicts(compose_cfg, tmp_path, model):
    """bf16-true keeps the weights (and M1's VAE while it trains) in bf16: evaluation, M1's
    cache and the estimator's logits must still meet fp32 inputs without a dtype error."""
    from ssvae.predict import run_model
    from ssvae.train import train

    tiny = ["vae.max_epochs=2", "vae.model.hidden_dims=[32]", "vae.model.z_dim=8"]
    nets = [] if model == "m1" else ["model.hidden_dims=[32]", "model.z_dim=4"]
    cfg = compose_cfg(
        f"model={model}",
        "trainer.precision=bf16-true",
        "trainer.max_epochs=5",
        f"paths.cache_dir={tmp_path / 'cache'}",
        *tiny,
        *nets,
    )
    record = train(cfg)
    assert record["status"] == "ok" and 0.0 <= record["test_err"] <= 1.0
    if model == "m2":  # a few bf16 epochs on digits are well above chance
        assert record["test_err"] < 0.5
    _, datamodule, trained = run_model(tmp_path / "run")
    x = torch.from_numpy(datamodule.splits.test.x[:16])
    logits = trained.classify_full_precision(x)
    assert logits.dtype == torch.float32 and torch.isfinite(logits).all()
