"""Training throughput of the M2 step against this machine's matrix-multiply bound.

    python scripts/bench.py                      # table on stdout, JSON with --json FILE
    python scripts/bench.py --models m2 --precisions bf16 --threads 2 --unlabeled 500

For each setting (model: M2 on 784 pixels, or M1+M2's M2 on a 50-d latent; precision fp32,
bf16 autocast, or bf16-true: parameters, Adam's state and every activation in bf16, as
Lightning's ``trainer.precision=bf16-true``; torch threads; unlabeled batch size) it times
full optimiser steps (forward, backward, Adam) on a synthetic batch of 100 labeled + B
unlabeled images, and reports:

- images/s (labeled + unlabeled) and the projected seconds per MNIST epoch (50,000 images);
- the FLOPs of one step, counted by torch's FlopCounterMode (matmuls; forward and backward);
- the matmul rate measured in the same process at the step's own layer shapes, and the bound
  it puts on the step (FLOPs / rate), so "x bound" = measured time / bound;
- peak memory: CUDA's max_memory_allocated on a GPU, else the growth of the process's peak RSS;
- the share of the step's time spent in matrix multiplies (torch.profiler, a few steps): near 1,
  only a faster matmul helps; well below, the elementwise work around them is what to fuse.

Each setting runs in its own subprocess so that thread counts and peak memory do not leak.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile
from torch.utils.flop_counter import FlopCounterMode

EPOCH_IMAGES = 50_000
LABELED = 100
VAE_Z = 50


PRECISIONS = ("fp32", "bf16", "bf16-true")
MODELS = (
    "m2",
    "m1m2",
    "adgm",
    "sdgm",
    "m2_vat",
    "m2_ladder",
    # The same networks and steps without M2's bound (model.bound=false): the ablation's cost.
    "m2_vat_no_bound",
    "m2_ladder_no_bound",
)


def build(model: str, device: torch.device, dtype: torch.dtype = torch.float32, **adam_options):
    """M2 on pixels, M1+M2's M2 on a 50-d latent, ADGM / SDGM on pixels (their defaults), or
    M2+VAT on pixels with VAT's batch-normalised classifier (experiment=m2_vat_bn_100's network),
    or M2 + Ladder on pixels (experiment=m2_ladder_100's networks), with an Adam optimiser
    (``adam_options``: e.g. ``fused=True``). "<model>_no_bound" is that model with
    ``bound=False``."""
    from ssvae.models.adgm import ADGM
    from ssvae.models.m2 import M2
    from ssvae.models.m2_ladder import M2Ladder
    from ssvae.models.m2_vat import M2VAT
    from ssvae.models.sdgm import SDGM

    bound = not model.endswith("_no_bound")
    model = model.removesuffix("_no_bound")
    x_dim = VAE_Z if model == "m1m2" else 784
    sizes = dict(num_classes=10, num_labeled=LABELED, num_unlabeled=EPOCH_IMAGES - LABELED)
    if model in ("adgm", "sdgm"):
        net = (ADGM if model == "adgm" else SDGM)(x_dim=x_dim, **sizes)
    elif model == "m2_vat":
        vat = dict(classifier_dims=[1200, 600, 300, 150], epsilon=5.0, alpha_scale=1.0)
        net = M2VAT(
            x_dim=x_dim, likelihood="bernoulli", weighting="paper", bound=bound, **vat, **sizes
        )
    elif model == "m2_ladder":
        m2 = dict(z_dim=100, hidden_dims=[500, 500], activation="relu", alpha_scale=1.0)
        net = M2Ladder(
            x_dim=x_dim, likelihood="bernoulli", weighting="balanced", bound=bound, **m2, **sizes
        )
    else:
        likelihood = "bernoulli" if model == "m2" else "gaussian"
        net = M2(x_dim=x_dim, likelihood=likelihood, weighting="paper", **sizes)
    net = net.to(device=device, dtype=dtype)
    opt = torch.optim.Adam(net.parameters(), lr=1e-4, **adam_options)
    return net, opt, x_dim


def make_step(net, opt, batch: dict, precision: str, loss_terms=None) -> Callable[[], None]:
    """One optimiser step (forward, backward, Adam) of ``net`` on ``batch``. ``bf16`` autocasts
    (fp32 weights); fp32 and bf16-true run as the model is held. ``loss_terms`` replaces the
    model's own, e.g. by its compiled version."""
    loss_terms = loss_terms or net.loss_terms
    device_type = next(net.parameters()).device.type

    def autocast():
        if precision == "bf16":
            return torch.autocast(device_type, dtype=torch.bfloat16)
        return nullcontext()

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        with autocast():
            loss = loss_terms(batch)["loss"]
        loss.backward()
        opt.step()

    return step


def make_batch(
    x_dim: int,
    unlabeled: int,
    gaussian: bool,
    device: torch.device,
    dtype: torch.dtype = torch.float32,
) -> dict:
    def images(n: int) -> torch.Tensor:
        if gaussian:
            return torch.randn(n, x_dim, device=device, dtype=dtype)
        return torch.bernoulli(torch.full((n, x_dim), 0.15, device=device, dtype=dtype))

    y = torch.randint(0, 10, (LABELED,), device=device)
    return {"labeled": (images(LABELED), y), "unlabeled": images(unlabeled)}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def matmul_rate(shapes: list[tuple[int, int, int]], dtype, device, seconds: float = 1.0) -> float:
    """GFLOP/s of torch.matmul over the step's (m, k, n) shapes, weighted as the step uses them."""
    mats = [
        (
            torch.randn(m, k, device=device, dtype=dtype),
            torch.randn(k, n, device=device, dtype=dtype),
        )
        for m, k, n in shapes
    ]
    flops = sum(2 * m * k * n for m, k, n in shapes)
    for a, b in mats:  # warm-up
        a @ b
    sync(device)
    reps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for a, b in mats:
            a @ b
        reps += 1
    sync(device)
    return flops * reps / (time.perf_counter() - start) / 1e9


MATMUL_OPS = {"aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm"}


def matmul_share(step, device: torch.device, steps: int = 3) -> float:
    """The fraction of ``steps`` optimiser steps' time spent in matrix multiplies: the CPU's own
    time of the matmul ops, or on a GPU the device time of its GEMM kernels."""
    cuda = device.type == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=activities) as prof:
        for _ in range(steps):
            step()
        sync(device)
    attr = "self_device_time_total" if cuda else "self_cpu_time_total"
    events = prof.key_averages()
    total = sum(getattr(e, attr) for e in events)
    matmul = sum(
        getattr(e, attr)
        for e in events
        if e.key in MATMUL_OPS or (cuda and "gemm" in e.key.lower())
    )
    return matmul / total if total else float("nan")


def step_shapes(model, batch: dict) -> list[tuple[int, int, int]]:
    """The forward matmuls (m, k, n) of one step, recorded from every nn.Linear the loss calls
    (rows = every leading dimension, e.g. classes x images), so any model's shapes are exact."""
    shapes: list[tuple[int, int, int]] = []

    def record(layer, inputs, output) -> None:
        x = inputs[0]
        shapes.append((x.numel() // x.shape[-1], layer.in_features, layer.out_features))

    hooks = [
        m.register_forward_hook(record) for m in model.modules() if isinstance(m, torch.nn.Linear)
    ]
    # With autograd on: VAT's power iteration differentiates inside the loss.
    model.loss_terms(batch)
    for hook in hooks:
        hook.remove()
    return shapes


def run_one(args: argparse.Namespace) -> dict:
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(0)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    dtype = torch.float32 if args.precision == "fp32" else torch.bfloat16
    # bf16-true holds the model itself in bf16; bf16 (autocast) keeps fp32 weights and casts.
    model_dtype = torch.bfloat16 if args.precision == "bf16-true" else torch.float32
    m2, opt, x_dim = build(args.model, device, model_dtype)
    batch = make_batch(x_dim, args.unlabeled, args.model == "m1m2", device, model_dtype)

    step = make_step(m2, opt, batch, args.precision)

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    with FlopCounterMode(display=False) as counter:  # counted eagerly: compiled code hides ops
        step()
    flops = counter.get_total_flops()
    if args.compiled == "on":
        # torch.compile (inductor) fuses the elementwise work around the matmuls, which is what
        # keeps the eager bf16 step far above its matmul bound.
        step = make_step(m2, opt, batch, args.precision, torch.compile(m2.loss_terms))
    for _ in range(args.warmup):
        step()
    sync(device)
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < args.seconds:
        step()
        steps += 1
    sync(device)
    step_s = (time.perf_counter() - start) / steps
    if device.type == "cuda":
        peak_mb = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024
    share = matmul_share(step, device)
    rate = matmul_rate(step_shapes(m2, batch), dtype, device)
    images = LABELED + args.unlabeled
    bound_s = flops / (rate * 1e9)
    return {
        "model": args.model,
        "device": str(device),
        "precision": args.precision,
        "compiled": args.compiled,
        "threads": args.threads,
        "unlabeled_batch": args.unlabeled,
        "step_ms": 1e3 * step_s,
        "images_per_s": images / step_s,
        "epoch_s": EPOCH_IMAGES / args.unlabeled * step_s,
        "step_gflop": flops / 1e9,
        "achieved_gflops": flops / step_s / 1e9,
        "matmul_gflops": rate,
        "bound_epoch_s": EPOCH_IMAGES / args.unlabeled * bound_s,
        "x_bound": step_s / bound_s,
        "matmul_share": share,
        "peak_mb": peak_mb,
    }


COLUMNS = [
    ("model", "{}"),
    ("device", "{}"),
    ("precision", "{}"),
    ("compiled", "{}"),
    ("threads", "{}"),
    ("unlabeled_batch", "{}"),
    ("images_per_s", "{:.0f}"),
    ("epoch_s", "{:.2f}"),
    ("step_gflop", "{:.2f}"),
    ("achieved_gflops", "{:.0f}"),
    ("matmul_gflops", "{:.0f}"),
    ("bound_epoch_s", "{:.2f}"),
    ("x_bound", "{:.2f}"),
    ("matmul_share", "{:.2f}"),
    ("peak_mb", "{:.0f}"),
]


def to_markdown(rows: list[dict]) -> str:
    lines = ["| " + " | ".join(name for name, _ in COLUMNS) + " |"]
    lines.append("| " + " | ".join("---" for _ in COLUMNS) + " |")
    for row in rows:
        lines.append("| " + " | ".join(fmt.format(row[name]) for name, fmt in COLUMNS) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=["m2", "m1m2"], choices=MODELS)
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16"], choices=PRECISIONS)
    parser.add_argument(
        "--compile",
        nargs="+",
        default=["off"],
        choices=["off", "on"],
        dest="compile_modes",
        help="torch.compile the loss: off, on or both",
    )
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--unlabeled", nargs="+", type=int, default=[100, 500])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seconds", type=float, default=3.0, help="timed seconds per setting")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the rows here")
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--precision", help=argparse.SUPPRESS)
    parser.add_argument("--compiled", default="off", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:  # a single setting, in this process
        args.threads, args.unlabeled = args.threads[0], args.unlabeled[0]
        print(json.dumps(run_one(args)))
        return
    rows = []
    settings = [
        (model, precision, compiled, threads, unlabeled)
        for model in args.models
        for precision in args.precisions
        for compiled in args.compile_modes
        for threads in args.threads
        for unlabeled in args.unlabeled
    ]
    for model, precision, compiled, threads, unlabeled in settings:
        command = [
            sys.executable,
            __file__,
            "--one",
            f"--model={model}",
            f"--precision={precision}",
            f"--compiled={compiled}",
            f"--threads={threads}",
            f"--unlabeled={unlabeled}",
            f"--device={args.device}",
            f"--seconds={args.seconds}",
            f"--warmup={args.warmup}",
        ]
        out = subprocess.run(command, capture_output=True, text=True, check=True)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(to_markdown(rows[-1:]).splitlines()[-1], flush=True)
    print()
    print(to_markdown(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
