"""bf16 autocast where this CPU computes bf16 natively, else fp32: the MNIST recipes' precision.

Measured (docs/speed.md, docs/ablation.md): on a CPU with native bf16 (AVX512-BF16 or AMX),
bf16-mixed runs an M2 or M1+M2 step 1.3-1.8x faster than fp32, and M1+M2 at 100 MNIST labels
ends as accurate over three seeds (4.61 +- 0.08 % against fp32's 4.67 +- 0.26 %). Elsewhere fp32:
that speed-up needs the native instructions, and on the lent GPU, at MNIST's sizes, bf16 autocast
was slower than fp32. On digits bf16 cost M2 about 0.4 points (docs/training.md, "Precision"),
so the global default, ``conf/trainer/default.yaml``, stays 32-true and the MNIST experiments ask
for ``precision: ${bf16_where_native:${.accelerator}}``. The value is resolved when the job starts
and is part of the run's settings digest, so runs on machines that resolve it differently are
told apart.
"""

from __future__ import annotations

from omegaconf import OmegaConf

RESOLVER = "bf16_where_native"


def cpu_has_native_bf16() -> bool:
    """True where torch reports AVX512-BF16 or AMX tiles (x86). Other CPUs: False (fp32)."""
    import torch  # here, not at import: registering the resolver must not load torch

    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in checks)


def bf16_where_native(accelerator: str = "auto") -> str:
    """Lightning's ``precision`` for ``trainer.accelerator``: "bf16-mixed" for a run on a CPU
    with native bf16, "32-true" otherwise (a GPU, or a CPU that would emulate bf16)."""
    import torch

    on_cpu = accelerator == "cpu" or (accelerator == "auto" and not torch.cuda.is_available())
    return "bf16-mixed" if on_cpu and cpu_has_native_bf16() else "32-true"


def register_resolver() -> None:
    """Make ``${bf16_where_native:<accelerator>}`` usable in configs (idempotent)."""
    if not OmegaConf.has_resolver(RESOLVER):
        OmegaConf.register_new_resolver(RESOLVER, bf16_where_native)
