import pytest
import torch

from ssvae import precision
from ssvae.config_checks import check_config
from ssvae.precision import bf16_where_native
from ssvae.runs import fingerprint

MNIST_RECIPES = ["table1", "table1_m2", "m2_mnist", "adgm_mnist", "sdgm_100", "m1m2_100"]


@pytest.fixture
def cpu_bf16(monkeypatch):
    """Pretend this CPU does (True) or does not (False) have native bf16, without CUDA."""

    def _set(native: bool) -> None:
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: native, raising=False)
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False, raising=False)
        monkeypatch.setattr(torch.cuda, "is_available", lambda: False)

    return _set


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
