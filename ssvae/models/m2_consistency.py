"""What M2 with a second training signal on its classifier shares (M2+VAT, M2+Ladder): M2's
bound, or the labeled cross-entropy alone as the ablation, plus terms on the unlabeled images
that a subclass defines, each weighted relative to M2's cross-entropy weight:

    loss = M2's loss (m2.py)   [bound=False: c * mean -log q(y|x) over the labeled images]
           + sum_t w_t * c * t(x_u)

where c is term_weights' "classify" and t runs over ``unlabeled_terms``' names, w_t from
``unlabeled_term_weights``. bound_unlabeled (null: all) puts only the first that many unlabeled
images of each batch into U(x), the other terms still seeing them all: the batches are shuffled,
so the mean over them estimates the mean over the batch without bias, and U(x), ten
class-conditional bounds per image, is what doubles a step's cost.

A batch-normalised classifier evaluates with running averages re-estimated over every training
image from its clean pass before each validation, as the consistency baselines do.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from ssvae.config_checks import positive_int
from ssvae.models.consistency import recompute_clean_passes, training_inputs_of
from ssvae.models.m2 import M2
from ssvae.nets import batch_norms


class M2WithConsistency(M2):
    """Subclasses define ``unlabeled_terms(x) -> {name: mean over x}`` on featurised unlabeled
    images and ``unlabeled_term_weights() -> {name: w}``."""

    def __init__(self, *, bound: bool = True, bound_unlabeled: int | None = None, **m2_settings):
        if bound_unlabeled is not None:
            positive_int(bound_unlabeled, "model.bound_unlabeled")
        super().__init__(**m2_settings)
        self.bound = bound
        self.bound_unlabeled = bound_unlabeled

    @staticmethod
    def name_in_tables(name: str, settings: Mapping[str, Any]) -> str:
        """Without its bound it is not a generative model: the ablation gets a row of its own
        rather than competing for the model's (ssvae.models.needs)."""
        return name if settings.get("bound", True) else f"{name}_no_bound"

    def on_validation_epoch_start(self) -> None:
        inputs = training_inputs_of(self.trainer) if batch_norms(self.classifier) else None
        if inputs is not None:
            recompute_clean_passes(self, [(self.classifier, self.classify)], inputs)

    def unlabeled_terms(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def unlabeled_term_weights(self) -> dict[str, float]:
        raise NotImplementedError

    def bound_terms(self, batch: dict) -> dict[str, torch.Tensor]:
        """M2's weighted loss and its parts, or, without the bound, the weighted cross-entropy."""
        if not self.bound:
            x_l, y_l = batch["labeled"]
            class_nll = self.class_nll(self.features(x_l), y_l)
            return {"loss": self.weights["classify"] * class_nll, "class_nll": class_nll}
        x_u = batch.get("unlabeled")
        if x_u is not None and self.bound_unlabeled is not None:
            batch = {**batch, "unlabeled": x_u[: self.bound_unlabeled]}
        return super().loss_terms(batch)

    def loss_terms(self, batch: dict) -> dict[str, torch.Tensor]:
        terms = self.bound_terms(batch)
        x_u = batch.get("unlabeled")
        weights = self.unlabeled_term_weights()
        if x_u is not None and any(weights.values()):
            added = self.unlabeled_terms(self.features(x_u))
            for name, value in added.items():
                weight = weights[name] * self.weights["classify"]
                terms["loss"] = terms["loss"] + weight * value
            terms.update(added)
        return terms
