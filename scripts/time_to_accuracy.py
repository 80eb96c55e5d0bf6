"""Train one model under a wall-clock budget and draw its time-to-accuracy curve.

    python scripts/time_to_accuracy.py --model m1m2 --data mnist --labels 100 --seed 0 \
        --budget-min 30 --out outputs/curves/m1m2-100 -- data.root=../shared/data

Runs ``ssvae.train`` with ``callbacks=learning_curve`` (validation and test error after every
epoch, against minutes; for M1 and M1+M2 the VAE's pretraining time counts too) and a budget
that stops training once it is spent. Anything after ``--`` is passed to ``ssvae-train`` as
Hydra overrides (the recipe, precision, threads...). Writes into ``--out``:
``run/`` (the training run), ``time_to_accuracy.json`` (the curve, the final test error of the
best-validation checkpoint, the command) and ``time_to_accuracy.png``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from ssvae.curves import plot_curves, read_curve
from ssvae.io import write_json_atomic


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, list[str]]:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    own = argv[: argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="m2")
    parser.add_argument("--data", default="digits")
    parser.add_argument("--labels", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--budget-min", type=float, required=True, help="wall-clock minutes")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(own)
    if not args.budget_min > 0:
        parser.error(f"--budget-min={args.budget_min} must be > 0")
    return args, extra


def main(argv: list[str] | None = None) -> int:
    args, extra = parse_args(argv)
    run_dir = args.out.resolve() / "run"
    command = [
        sys.executable,
        "-m",
        "ssvae.train",
        f"model={args.model}",
        f"data={args.data}",
        f"data.num_labels={args.labels}",
        f"seed={args.seed}",
        "callbacks=learning_curve",
        f"callbacks.learning_curve.budget_min={args.budget_min}",
        f"hydra.run.dir={run_dir}",
        *extra,
    ]
    if not any(o.startswith("trainer.max_epochs=") for o in extra):
        command.append("trainer.max_epochs=-1")  # the budget ends training
    started = time.perf_counter()
    code = subprocess.call(command)
    wall_min = (time.perf_counter() - started) / 60
    if code != 0:
        return code
    result = json.loads((run_dir / "result.json").read_text())
    curve = read_curve(run_dir)
    summary = {
        "model": args.model,
        "dataset": result["dataset"],
        "num_labels": result["num_labels"],
        "seed": args.seed,
        "budget_min": args.budget_min,
        "command_wall_min": wall_min,
        "test_err": result["test_err"],
        "best_val_acc": result["best_val_acc"],
        "epochs": result["epochs"],
        "overrides": extra,
        **curve,
    }
    write_json_atomic(args.out / "time_to_accuracy.json", summary)
    title = (
        f"{args.model} on {result['dataset']}, {result['num_labels']} labels, seed {args.seed}: "
        f"test error {100 * result['test_err']:.2f} %"
    )
    plot_curves([(args.model, curve)], args.out / "time_to_accuracy.png", title)
    print(f"{title} after {wall_min:.1f} min; curve in {args.out}/time_to_accuracy.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
