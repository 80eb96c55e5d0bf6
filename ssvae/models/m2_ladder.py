"""M2 whose classifier is a Ladder network: the generative bound of Kingma et al. (2014) and the
denoising costs of Rasmus et al. (2015) on one network, q(y|x).

    loss = M2's loss (m2.py: weighted -L(x, y), -U(x) and -log q(y|x~))
           + c * sum_l lambda_l * C_l(x_u)                                        (ladder.py)

q(y|x) is the Ladder's encoder (ladder.py: batch norm, Gaussian noise of ``noise_std`` on every
layer in training): its corrupted pass in training, as the Ladder trains its cross-entropy, and
its clean pass in evaluation. C_l are the Ladder's per-layer denoising costs on the unlabeled
images (the decoder reconstructs the clean encoder's normalised activations from the corrupted
ones), and c is the weight M2 puts on the labeled cross-entropy (term_weights' "classify"): the
Ladder's own loss, cross-entropy + sum_l lambda_l C_l, enters at the weight M2's cross-entropy has,
so that the two keep the Ladder's balance (c = 500 per batch at 100 MNIST labels with
experiment=m2_ladder_100's balanced weighting and alpha_scale 1, as M2+VAT weighs its LDS).

bound=False leaves L(x, y) and U(x) out: the Ladder network alone on the same classifier, data
and steps (the generative networks exist but get no gradient). It is the ablation that says
what the bound adds over the denoising costs on the same seeds.

bound_unlabeled (null: all) puts only the first that many unlabeled images of each batch into
U(x), the denoising costs still seeing them all (m2_consistency.py). Batch norm's running
averages are re-estimated over the training images before each validation from the clean pass,
as the consistency baselines do, so the passes of training may move them freely.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ssvae.models.ladder import (
    LadderDecoder,
    LadderEncoder,
    checked_ladder_settings,
    denoising_cost,
)
from ssvae.models.m2_consistency import M2WithConsistency
from ssvae.nets import check_layer_sizes


class LadderClassifier(nn.Module):
    """Logits of the Ladder's encoder: the corrupted pass in training mode, the clean one in
    evaluation (and in the clean passes that re-estimate batch norm, which run in eval)."""

    def __init__(self, encoder: LadderEncoder, noise_std: float) -> None:
        super().__init__()
        self.encoder = encoder
        self.noise_std = noise_std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x, self.noise_std if self.training else 0.0).logits


class M2Ladder(M2WithConsistency):
    def __init__(
        self,
        *,
        ladder_dims: Sequence[int] = (1000, 500, 250, 250, 250),
        noise_std: float = 0.3,
        denoising_weights: Sequence[float] = (1000.0, 10.0, 0.1, 0.1, 0.1, 0.1, 0.1),
        bound: bool = True,
        bound_unlabeled: int | None = None,
        **m2_settings,
    ) -> None:
        super().__init__(bound=bound, bound_unlabeled=bound_unlabeled, **m2_settings)
        hidden = check_layer_sizes(ladder_dims, 1, field="model.ladder_dims")
        widths = [m2_settings["x_dim"], *hidden, self.num_classes]
        weights = checked_ladder_settings(widths, noise_std, denoising_weights)
        self.classifier = LadderClassifier(LadderEncoder(widths), noise_std)
        self.ladder_decoder = LadderDecoder(widths)
        self.denoising_weights = weights

    def unlabeled_terms(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """C_l for l = 0..L on featurised unlabeled images x, by name "denoise_l"."""
        encoder = self.classifier.encoder
        clean = encoder(x)
        z_hat = self.ladder_decoder(encoder(x, self.classifier.noise_std))
        return {
            f"denoise_{i}": denoising_cost(z_hat[i], clean.z[i], clean.mean[i], clean.var[i])
            for i in range(len(self.denoising_weights))
        }

    def unlabeled_term_weights(self) -> dict[str, float]:
        return {f"denoise_{i}": w for i, w in enumerate(self.denoising_weights)}
