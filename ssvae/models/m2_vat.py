"""M2 whose classifier is also trained by virtual adversarial training: the generative bound of
Kingma et al. (2014) and the smoothness term of Miyato et al. (2018) on one network, q(y|x).

    loss = M2's loss (m2.py: weighted -L(x, y), -U(x) and -log q(y|x))
           + vat_weight * c * mean_unlabeled KL( q(y | x) || q(y | x + r_adv) )      (vat.py)

where c is the weight M2 puts on the labeled cross-entropy (term_weights' "classify", 50 per
labeled image at 100 MNIST labels): vat_weight = 1 weighs the LDS as VAT does, as much as the
cross-entropy. Unscaled, the LDS (a fraction of a nat) would vanish beside bounds of ~100 nats.

r_adv = epsilon * d / ||d||, d from ``power_iterations`` finite-difference power steps (vat.py's
adversarial_direction), with q(y|x) held constant. q(y|x) is M2's inference network for y and
the model's classifier: U(x) trains it through the class-conditional bounds and its entropy, VAT
makes it smooth around each unlabeled image.

bound=False leaves L(x, y) and U(x) out: the same classifier, trained by cross-entropy and VAT
alone (the generative networks then exist but get no gradient). It is the ablation that says
what the bound adds over the consistency term on the same network and seeds.

epsilon is an L2 distance in the classifier's input space: pixels in [0, 1] (||x|| is about 9.3
for an MNIST image), or standardised features (||x|| about sqrt(features)).
"""

from __future__ import annotations

import torch

from ssvae.config_checks import positive_int
from ssvae.errors import ConfigError
from ssvae.models.m2 import M2
from ssvae.models.vat import adversarial_direction, kl_from_logits


class M2VAT(M2):
    def __init__(
        self,
        *,
        vat_weight: float = 1.0,
        epsilon: float = 0.5,
        xi: float = 1e-6,
        power_iterations: int = 1,
        bound: bool = True,
        **m2_settings,
    ) -> None:
        for field, value in (("epsilon", epsilon), ("xi", xi)):
            if not value > 0:
                raise ConfigError(f"model.{field}={value} must be > 0")
        if not vat_weight >= 0:
            raise ConfigError(f"model.vat_weight={vat_weight} must be >= 0")
        positive_int(power_iterations, "model.power_iterations")
        super().__init__(**m2_settings)
        self.vat = {"weight": vat_weight, "epsilon": epsilon, "xi": xi, "steps": power_iterations}
        self.bound = bound

    def lds(self, x: torch.Tensor) -> torch.Tensor:
        """Mean KL(q(y|x) || q(y|x + r_adv)) over featurised images x, q(y|x) held constant."""
        clean = self.classifier(x).detach()
        d = adversarial_direction(self.classifier, x, clean, self.vat["xi"], self.vat["steps"])
        return kl_from_logits(clean, self.classifier(x + self.vat["epsilon"] * d)).mean()

    def loss_terms(self, batch: dict) -> dict[str, torch.Tensor]:
        if self.bound:
            terms = super().loss_terms(batch)
        else:  # the ablation: cross-entropy on the labeled images only, as M2 weighs it
            x_l, y_l = batch["labeled"]
            class_nll = self.class_nll(self.features(x_l), y_l)
            terms = {"loss": self.weights["classify"] * class_nll, "class_nll": class_nll}
        x_u = batch.get("unlabeled")
        if x_u is not None and self.vat["weight"]:
            lds = self.lds(self.features(x_u))
            weight = self.vat["weight"] * self.weights["classify"]
            terms["loss"] = terms["loss"] + weight * lds
            terms["lds"] = lds
        return terms
