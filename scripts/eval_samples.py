"""Test error of an ADGM or SDGM run with its prediction averaged over more or fewer draws of a.

    python scripts/eval_samples.py outputs/adgm/sdgm_mnist100_s0 --samples 1 20 100

Runs train with ``model.eval_samples`` (20 in ``experiment=sdgm_100``, for a cheap per-epoch
curve); the authors reported their test error with 100. This scores the run's best checkpoint
(or ``--checkpoint``) on the whole test split with each count, through the model's own
``classify`` in full precision, as a run's test does, and prints one JSON line. The draws are
seeded, so a rerun prints the same.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from ssvae.predict import probabilities, run_model


@torch.no_grad()
def eval_samples(
    run_dir: Path, samples: list[int], checkpoint: Path | None = None, seed: int = 0
) -> dict:
    _, datamodule, model = run_model(run_dir, checkpoint)
    if not hasattr(model, "eval_samples"):
        raise SystemExit(f"{run_dir}: its model averages no draws (no eval_samples)")
    x, y, _ = datamodule.prediction_rows("test")
    errors = {}
    for count in samples:
        model.eval_samples = count
        torch.manual_seed(seed)
        wrong = (probabilities(model, x, temperature=1.0).argmax(-1) != y).sum()
        errors[str(count)] = round(100 * int(wrong) / len(y), 2)
    return {"run": str(run_dir), "images": len(y), "test_error_%_by_samples": errors}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--samples", type=int, nargs="+", default=[1, 20, 100])
    parser.add_argument("--checkpoint", type=Path, help="score this checkpoint instead")
    args = parser.parse_args()
    print(json.dumps(eval_samples(args.run_dir, args.samples, args.checkpoint)))


if __name__ == "__main__":
    main()
