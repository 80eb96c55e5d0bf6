"""Where one optimiser step's time goes, and what Adam's fused update saves.

    python scripts/profile_step.py --model sdgm                  # top ops by self CPU time
    python scripts/profile_step.py --model sdgm --compare-adam   # ms per step of each Adam

Builds the model and synthetic batch as ``scripts/bench.py`` does (100 labeled + B unlabeled
images), runs bf16 autocast steps on the CPU, and prints torch.profiler's table of the ops with
the most self CPU time. ``--compare-adam`` instead times the step with each of Adam's
implementations, best of ``--repeats`` blocks of ``--steps`` steps, in one process so that the
load on the machine is the same for each.
"""

from __future__ import annotations

import argparse
import time

import torch
from bench import MODELS, build, make_batch, make_step
from torch.profiler import ProfilerActivity, profile

ADAM_VARIANTS = {"default": {}, "foreach": {"foreach": True}, "fused": {"fused": True}}


def bf16_step(model: str, unlabeled: int, adam_options: dict):
    """bench.py's model, batch and bf16-autocast step on the CPU, with Adam's ``adam_options``."""
    device = torch.device("cpu")
    torch.manual_seed(0)
    net, opt, x_dim = build(model, device, **adam_options)
    batch = make_batch(x_dim, unlabeled, model == "m1m2", device)
    return make_step(net, opt, batch, "bf16")


def warm_up(step, steps: int = 5) -> None:
    """First steps allocate memory and Adam's state: keep them out of what is measured."""
    for _ in range(steps):
        step()


def ms_per_step(step, steps: int, repeats: int) -> float:
    warm_up(step)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(steps):
            step()
        best = min(best, (time.perf_counter() - start) / steps)
    return 1000 * best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", choices=MODELS, default="sdgm")
    parser.add_argument("--unlabeled", type=int, default=100)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=15)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rows", type=int, default=25, help="ops in the profile table")
    parser.add_argument("--compare-adam", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    if args.compare_adam:
        print("| model | adam | ms per step |\n| --- | --- | ---: |")
        for name, kwargs in ADAM_VARIANTS.items():
            step = bf16_step(args.model, args.unlabeled, kwargs)
            print(f"| {args.model} | {name} | {ms_per_step(step, args.steps, args.repeats):.1f} |")
        return

    step = bf16_step(args.model, args.unlabeled, {})
    warm_up(step)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(args.steps):
            step()
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.rows))


if __name__ == "__main__":
    main()
