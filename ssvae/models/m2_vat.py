"""M2 whose classifier is also trained by virtual adversarial training: the generative bound of
Kingma et al. (2014) and the smoothness term of Miyato et al. (2018) on one network, q(y|x).

    loss = M2's loss (m2.py: weighted -L(x, y), -U(x) and -log q(y|x))
           + vat_weight * c * mean_unlabeled KL( q(y | x) || q(y | x + r_adv) )      (vat.py)
           + entropy_weight * c * mean_unlabeled H( q(y | x) )          (EntMin, 0 by default)

where c is the weight M2 puts on the labeled cross-entropy (term_weights' "classify", 50 per
labeled image at 100 MNIST labels): vat_weight = 1 weighs the LDS as VAT does, as much as the
cross-entropy. Unscaled, the LDS (a fraction of a nat) would vanish beside bounds of ~100 nats.

r_adv = epsilon * d / ||d||, d from ``power_iterations`` finite-difference power steps (vat.py's
adversarial_direction), with q(y|x) held constant. q(y|x) is M2's inference network for y and
the model's classifier: U(x) trains it through the class-conditional bounds and its entropy, VAT
makes it smooth around each unlabeled image.

entropy_weight > 0 adds entropy minimisation on the unlabeled images, as VAT+EntMin does (Miyato
et al. 2018, sec. 4.1.2; vat.py's entropy_weight): the prediction is pushed to be confident as
well as smooth. With the bound on, it works against U(x)'s own +H(q(y|x)), whose weight (1 per
image) is c times smaller. Not in m2_vat.yaml, so that the digests of the runs made before it
stay as they were: an experiment sets it (experiment=m2_vat_entmin_100), or +model.entropy_weight.

bound=False leaves L(x, y) and U(x) out: the same classifier, trained by cross-entropy and VAT
alone (the generative networks then exist but get no gradient). It is the ablation that says
what the bound adds over the consistency term on the same network and seeds.

bound_unlabeled (null: all) puts only the first that many unlabeled images of each batch into
U(x), VAT still seeing them all (m2_consistency.py): U(x) is what makes a step with the bound
twice the cost of one without (0.38 against 0.17 min per MNIST epoch at 250 unlabeled images per
step: experiment=m2_vat_bn_100, seed 0).

classifier_dims (null: M2's own MLP classifier) gives q(y|x) VAT's batch-normalised network
instead (nets.BatchNormMLP: linear -> batch norm -> ReLU -> Gaussian noise of
``classifier_noise_std`` per hidden layer), the network VAT's recipe reaches 1.71 % with: M2's
bound then trains the classifier VAT trains best. Its running averages are re-estimated over the
training images before each validation, as the consistency baselines do (consistency.py).

epsilon is an L2 distance in the classifier's input space: pixels in [0, 1] (||x|| is about 9.3
for an MNIST image), or standardised features (||x|| about sqrt(features)).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ssvae.config_checks import positive_int
from ssvae.elbo import categorical_entropy
from ssvae.errors import ConfigError
from ssvae.models.m2_consistency import M2WithConsistency
from ssvae.models.vat import adversarial_direction, kl_from_logits
from ssvae.nets import BatchNormMLP, check_layer_sizes


class M2VAT(M2WithConsistency):
    def __init__(
        self,
        *,
        vat_weight: float = 1.0,
        entropy_weight: float = 0.0,
        epsilon: float = 0.5,
        xi: float = 1e-6,
        power_iterations: int = 1,
        bound: bool = True,
        classifier_dims: Sequence[int] | None = None,
        classifier_noise_std: float = 0.5,
        bound_unlabeled: int | None = None,
        **m2_settings,
    ) -> None:
        for field, value in (("epsilon", epsilon), ("xi", xi)):
            if not value > 0:
                raise ConfigError(f"model.{field}={value} must be > 0")
        for field, value in (("vat_weight", vat_weight), ("entropy_weight", entropy_weight)):
            if not value >= 0:
                raise ConfigError(f"model.{field}={value} must be >= 0")
        positive_int(power_iterations, "model.power_iterations")
        super().__init__(bound=bound, bound_unlabeled=bound_unlabeled, **m2_settings)
        if classifier_dims is not None:
            hidden = check_layer_sizes(classifier_dims, 1, field="model.classifier_dims")
            self.classifier = BatchNormMLP(
                m2_settings["x_dim"], hidden, self.num_classes, "relu", classifier_noise_std
            )
        self.vat = {"weight": vat_weight, "epsilon": epsilon, "xi": xi, "steps": power_iterations}
        self.entropy_weight = entropy_weight

    def unlabeled_terms(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """On featurised unlabeled images x: "lds", the mean KL(q(y|x) || q(y|x + r_adv)) with
        q(y|x) held constant, and, where EntMin is on, "entropy", the mean H(q(y|x))."""
        logits = self.classifier(x)
        clean = logits.detach()
        d = adversarial_direction(self.classifier, x, clean, self.vat["xi"], self.vat["steps"])
        perturbed = self.classifier(x + self.vat["epsilon"] * d)
        terms = {"lds": kl_from_logits(clean, perturbed).mean()}
        if self.entropy_weight:
            terms["entropy"] = categorical_entropy(logits).mean()
        return terms

    def unlabeled_term_weights(self) -> dict[str, float]:
        return {"lds": self.vat["weight"], "entropy": self.entropy_weight}
