"""Does an ADGM or SDGM run's classifier q(y|a,x) use the auxiliary variable a?

    python scripts/auxiliary_use.py outputs/adgm/adgm_mnist100_s0 [--images N]
    python scripts/auxiliary_use.py RUN --checkpoint RUN/checkpoints/last.ckpt   # while it trains

Test error (%) of q(y|a,x) on the test images (or the first N) with a set four ways: q(a|x)'s
mean, one draw of q(a|x), zero, and a draw of N(0, I) that ignores x. An a the classifier
ignores gives the same error every way (a collapsed auxiliary variable: see ``ssvae-figures``'
latent_use.png); one it relies on gives a worse error once a no longer follows x. Prints one JSON
line, with a's active units (dimensions whose posterior mean's variance over those images
exceeds 0.01, as ``ssvae-figures``' latent_use). ``--checkpoint`` scores that checkpoint instead
of a finished run's best, so a run can be checked while it trains.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from ssvae import elbo
from ssvae.figures import active_units
from ssvae.predict import run_model


@torch.no_grad()
def auxiliary_use(
    run_dir: Path, images: int | None = None, seed: int = 0, checkpoint: Path | None = None
) -> dict:
    cfg, datamodule, model = run_model(run_dir, checkpoint)
    if not hasattr(model, "q_a"):
        raise SystemExit(f"{run_dir}: its model ({cfg.model.name}) has no auxiliary variable a")
    x, y, _ = datamodule.prediction_rows("test")
    x, y = x[:images].float(), y[:images]
    torch.manual_seed(seed)
    mean, logvar = model.q_a(x)
    settings = {
        "mean of q(a|x)": mean,
        "a ~ q(a|x)": elbo.reparameterize(mean, logvar),
        "a = 0": torch.zeros_like(mean),
        "a ~ N(0, I)": torch.randn_like(mean),
    }
    errors = {
        name: round(100 * (model.q_y(x, a).argmax(-1) != y).float().mean().item(), 2)
        for name, a in settings.items()
    }
    use = active_units({"a": mean})["a"]
    return {
        "run": str(run_dir),
        "checkpoint": str(checkpoint) if checkpoint else "best",
        "images": len(y),
        "active_units_of_a": f"{use['active']} of {use['dims']}",
        "largest_variance": round(max(use["variance"]), 6),
        "test_error_%": errors,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--images", type=int, help="the first N test images (default: all)")
    parser.add_argument(
        "--checkpoint", type=Path, help="score this checkpoint (e.g. RUN/checkpoints/last.ckpt)"
    )
    args = parser.parse_args()
    print(json.dumps(auxiliary_use(args.run_dir, args.images, checkpoint=args.checkpoint)))


if __name__ == "__main__":
    main()
