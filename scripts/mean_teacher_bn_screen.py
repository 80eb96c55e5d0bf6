"""Mean Teacher's two ways of meeting batch norm, side by side on MNIST at 100 labels.

    python scripts/mean_teacher_bn_screen.py mixed --steps 900 --weight 10
    python scripts/mean_teacher_bn_screen.py split --steps 2400 --weight 10

"mixed" sends the 100 labeled and 100 unlabeled images of a step through batch norm as one
batch (what ssvae's MeanTeacher did until 2026-12-03); "split" sends them as two batches (what
it does now, as ssvae's Ladder recipe does). Everything else is the model's recipe:
784-1200-1200-10 with batch norm, input noise 0.3, Adam 2e-3, the consistency weight ramped up
over 6,000 steps, EMA decay 0.99. Every 300 steps it prints the validation error of student
and teacher with batch norm re-estimated over the 50,000 training images (clean), as the
model's evaluation does, and of the teacher with batch norm re-estimated over the same images
with training's noise. One torch thread; about 2 minutes per 1,000 steps on one core here.
"""

from __future__ import annotations

import argparse
import copy
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ssvae.data.datasets import load_idx_splits
from ssvae.models.mean_teacher import consistency_cost, ema_decay_at, ema_update, sigmoid_rampup
from ssvae.nets import BatchNormMLP, recompute_running_stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("arrangement", choices=["mixed", "split"])
    parser.add_argument("--steps", type=int, default=900)
    parser.add_argument("--weight", type=float, default=10.0, help="consistency weight")
    parser.add_argument("--noise", type=float, default=0.3, help="input noise std")
    parser.add_argument("--root", default="../shared/data")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)

    data = load_idx_splits("mnist", Path(args.root), download=False)
    x, y = torch.tensor(data.train.x), torch.tensor(data.train.y)
    picked = [rng.choice(np.flatnonzero(data.train.y == k), 10, replace=False) for k in range(10)]
    index = np.concatenate(picked)
    x_l, y_l = x[index], y[index]
    x_val, y_val = torch.tensor(data.val.x), torch.tensor(data.val.y)

    student = BatchNormMLP(784, [1200, 1200], 10)
    teacher = copy.deepcopy(student).requires_grad_(False)
    optimizer = torch.optim.Adam(student.parameters(), 2e-3)

    def noisy(t: torch.Tensor) -> torch.Tensor:
        return t + args.noise * torch.randn_like(t)

    def error(net: torch.nn.Module, stats_noise: float = 0.0) -> float:
        # stats_noise > 0: batch norm re-estimated over noisy images, as training saw them.
        chunks = (c + stats_noise * torch.randn_like(c) for c in x.split(1000))
        recompute_running_stats(net, chunks, net)
        net.eval()
        with torch.no_grad():
            wrong = (net(x_val).argmax(1) != y_val).float().mean().item()
        net.train()
        return 100 * wrong

    start = time.time()
    for step in range(args.steps):
        x_u = x[torch.randint(0, len(x), (100,))]
        if args.arrangement == "mixed":
            both = torch.cat([x_l, x_u])
            out = student(noisy(both))
            with torch.no_grad():
                target = teacher(noisy(both))
        else:
            out = torch.cat([student(noisy(x_l)), student(noisy(x_u))])
            with torch.no_grad():
                target = torch.cat([teacher(noisy(x_l)), teacher(noisy(x_u))])
        class_nll = F.cross_entropy(out[: len(y_l)], y_l)
        weight = args.weight * sigmoid_rampup(step / 6000)
        loss = class_nll + weight * consistency_cost(out, target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        ema_update(teacher, student, ema_decay_at(step, 0.99))
        if (step + 1) % 300 == 0:
            print(
                f"{args.arrangement} weight {args.weight} step {step + 1}: validation error "
                f"student {error(student):.2f} %, teacher {error(teacher):.2f} %, teacher with "
                f"noisy statistics {error(teacher, args.noise):.2f} % "
                f"({time.time() - start:.0f} s)",
                flush=True,
            )


if __name__ == "__main__":
    main()
