"""M2 with a Ladder network as its classifier: the added denoising costs, the ablation without
the bound being the Ladder's own loss, the corrupted and clean passes, and a short run."""

import pytest
import torch
import torch.nn.functional as F

from ssvae.errors import ConfigError
from ssvae.models.ladder import Ladder
from ssvae.models.m2 import M2
from ssvae.models.m2_ladder import M2Ladder
from ssvae.train import train

SIZES = {"x_dim": 6, "num_classes": 3, "num_labeled": 4, "num_unlabeled": 8}
LADDER = {"ladder_dims": [5, 4], "denoising_weights": [2.0, 0.5, 0.25, 0.1]}


def _model(**settings) -> M2Ladder:
    torch.manual_seed(0)
    merged = {**LADDER, **settings}
    return M2Ladder(**SIZES, z_dim=2, hidden_dims=[5], likelihood="gaussian", **merged)


def _batch() -> dict:
    generator = torch.Generator().manual_seed(1)
    x_l, x_u = torch.randn(4, 6, generator=generator), torch.randn(8, 6, generator=generator)
    return {"labeled": (x_l, torch.tensor([0, 1, 2, 0])), "unlabeled": x_u}


def _ladder_with_the_same_weights(model: M2Ladder, noise_std: float) -> Ladder:
    """The Ladder network holding ``model``'s classifier and decoder, for comparing losses."""
    ladder = Ladder(6, 3, hidden_dims=LADDER["ladder_dims"], noise_std=noise_std,
                    denoising_weights=LADDER["denoising_weights"])  # fmt: skip
    ladder.encoder.load_state_dict(model.classifier.encoder.state_dict())
    ladder.decoder.load_state_dict(model.ladder_decoder.state_dict())
    return ladder


def test_without_the_bound_the_loss_is_the_ladders_times_m2s_classification_weight():
    # No noise: both losses are deterministic, so they compare exactly.
    model = _model(noise_std=0.0, bound=False)
    ladder = _ladder_with_the_same_weights(model, 0.0)
    batch = _batch()
    terms, want = model.loss_terms(batch), ladder.loss_terms(batch)
    # M2's classification weight at 4 of 12 images labeled, balanced (its default): 0.1 * 12 / 4.
    assert model.weights["classify"] == pytest.approx(0.3)
    for name in ["class_nll", "denoise_0", "denoise_1", "denoise_2", "denoise_3"]:
        assert terms[name].item() == pytest.approx(want[name].item(), rel=1e-5)
    assert terms["denoise_0"].item() > 0
    assert terms["loss"].item() == pytest.approx(0.3 * want["loss"].item(), rel=1e-5)
    assert "elbo_unlabeled" not in terms


def test_with_the_bound_the_loss_is_m2s_plus_the_weighted_denoising_costs():
    model, batch = _model(noise_std=0.0), _batch()
    torch.manual_seed(5)
    terms = model.loss_terms(batch)
    torch.manual_seed(5)
    m2_terms = M2.loss_terms(model, batch)  # the same draws of z (no noise in the encoder)
    costs = [terms[f"denoise_{i}"] for i in range(4)]
    by_hand = sum(w * c for w, c in zip(LADDER["denoising_weights"], costs, strict=True))
    want = m2_terms["loss"] + 0.3 * by_hand
    assert terms["loss"].item() == pytest.approx(want.item(), rel=1e-5)
    assert terms["elbo_unlabeled"].item() == pytest.approx(m2_terms["elbo_unlabeled"].item())


def test_bound_unlabeled_puts_the_first_images_into_the_bound_and_all_into_the_costs():
    model, batch = _model(noise_std=0.0, bound_unlabeled=3), _batch()
    torch.manual_seed(5)
    terms = model.loss_terms(batch)
    torch.manual_seed(5)
    first = {**batch, "unlabeled": batch["unlabeled"][:3]}
    m2_terms = M2.loss_terms(model, first)
    assert terms["elbo_unlabeled"].item() == pytest.approx(m2_terms["elbo_unlabeled"].item())
    costs = model.unlabeled_terms(batch["unlabeled"])  # all 8 images
    for name, cost in costs.items():
        assert terms[name].item() == pytest.approx(cost.item(), rel=1e-6)


def test_q_y_given_x_is_the_corrupted_pass_in_training_and_the_clean_one_in_evaluation():
    model, x = _model(noise_std=0.3), _batch()["unlabeled"]
    model.train()
    assert not torch.equal(model.classifier(x), model.classifier(x))  # fresh noise each pass
    model.eval()
    clean = model.classifier.encoder(x).logits
    assert torch.equal(model.classify(x), clean) and torch.equal(model.classify(x), clean)
    probabilities = F.softmax(model.classify(x), -1)
    assert probabilities.shape == (8, 3)


def test_the_classifier_gets_gradient_from_the_bound():
    # U(x) weighs each class's bound by q(y|x): the Ladder's weights learn from the bound too.
    model, batch = _model(noise_std=0.0, denoising_weights=[0.0] * 4), _batch()
    model.weights = {"labeled": 0.0, "unlabeled": 1.0, "classify": 0.0}
    model.loss_terms(batch)["loss"].backward()
    grads = [p.grad for p in model.classifier.parameters() if p.grad is not None]
    assert grads and any(g.abs().sum() > 0 for g in grads)


@pytest.mark.parametrize(
    "field, value",
    [("denoising_weights", [1.0, 2.0]), ("denoising_weights", [1.0, -1.0, 0.0, 0.0]),
     ("noise_std", -0.1), ("ladder_dims", [])],
)  # fmt: skip
def test_bad_settings_name_their_field(field, value):
    with pytest.raises(ConfigError, match=f"model.{field}="):
        _model(**{field: value})


def test_without_its_bound_it_is_named_apart_in_results_tables():
    from ssvae.models.needs import name_in_tables

    settings = {"_target_": "ssvae.models.m2_ladder.M2Ladder", "name": "m2_ladder"}
    assert name_in_tables(settings) == "m2_ladder"
    assert name_in_tables({**settings, "bound": False}) == "m2_ladder_no_bound"


def test_the_mnist_experiment_is_the_ladders_recipe_with_m2s_networks(compose_cfg):
    job = compose_cfg("experiment=m2_ladder_100", "seed=1")
    ladder = compose_cfg("experiment=ladder_100", "seed=1")
    assert job.model._target_.endswith("M2Ladder") and job.sweep_name == "m2_ladder_100"
    assert list(job.model.ladder_dims) == list(ladder.model.hidden_dims)
    for key in ["noise_std", "denoising_weights", "scheduler", "optimizer"]:
        assert job.model[key] == ladder.model[key]
    for key in ["labeled_batch_size", "unlabeled_batch_size", "num_labels"]:
        assert job.data[key] == ladder.data[key]
    assert job.trainer.max_epochs == ladder.trainer.max_epochs
    assert job.model.weighting == "balanced" and job.model.alpha_scale == 1.0


# Supervised network on digits at 50 labels, 30 epochs: 82-94 % test accuracy (test_models).
SUPERVISED_FLOOR = 0.8


@pytest.mark.parametrize("bound", [True, False])
def test_a_short_digits_run_beats_the_supervised_network(compose_cfg, bound):
    cfg = compose_cfg(
        "model=m2_ladder",
        "data.num_labels=50",
        "trainer.max_epochs=15",
        "model.ladder_dims=[128,64]",
        "model.denoising_weights=[1000.0,10.0,0.1,0.1]",
        f"model.bound={bound}",
    )
    record = train(cfg)
    assert record["status"] == "ok" and record["test_acc"] > SUPERVISED_FLOOR
    assert record["model"] == ("m2_ladder" if bound else "m2_ladder_no_bound")
