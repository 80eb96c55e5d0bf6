"""M2 with VAT on its classifier: the added term, the ablation without the bound, a short run."""

import pytest
import torch

from ssvae.errors import ConfigError
from ssvae.models.m2 import M2
from ssvae.models.m2_vat import M2VAT
from ssvae.models.vat import adversarial_direction, kl_from_logits
from ssvae.train import train

SIZES = {"x_dim": 6, "num_classes": 3, "num_labeled": 4, "num_unlabeled": 8}


def _model(**settings) -> M2VAT:
    torch.manual_seed(0)
    return M2VAT(**SIZES, z_dim=2, hidden_dims=[5], likelihood="gaussian", **settings)


def _batch() -> dict:
    generator = torch.Generator().manual_seed(1)
    x_l, x_u = torch.randn(4, 6, generator=generator), torch.randn(8, 6, generator=generator)
    return {"labeled": (x_l, torch.tensor([0, 1, 2, 0])), "unlabeled": x_u}


# M2's own classifier, and VAT's batch-normalised one with hidden noise.
CLASSIFIERS = {"m2": {}, "batch_norm": {"classifier_dims": [5, 4], "classifier_noise_std": 0.3}}


@pytest.mark.parametrize("classifier", sorted(CLASSIFIERS))
def test_the_loss_is_m2s_plus_the_weighted_lds(classifier):
    model, batch = _model(vat_weight=0.5, epsilon=0.7, **CLASSIFIERS[classifier]), _batch()
    torch.manual_seed(5)
    terms = model.loss_terms(batch)
    torch.manual_seed(5)
    m2_terms = M2.loss_terms(model, batch)  # the same draws: M2's bound first, then VAT's start
    x_u = batch["unlabeled"]
    clean = model.classifier(x_u)
    d = adversarial_direction(model.classifier, x_u, clean, 1e-6, 1)
    lds = kl_from_logits(clean, model.classifier(x_u + 0.7 * d)).mean()
    # M2's classification weight at 4 of 12 images labeled, balanced: 0.1 * 12 / 4.
    assert model.weights["classify"] == pytest.approx(0.3)
    assert terms["lds"].item() == pytest.approx(lds.item(), rel=1e-5)
    assert lds.item() > 0
    want = m2_terms["loss"] + 0.5 * 0.3 * lds
    assert terms["loss"].item() == pytest.approx(want.item(), rel=1e-5)


@pytest.mark.parametrize("bound", [True, False])
def test_entmin_adds_the_weighted_mean_entropy_of_q_y_given_x(bound):
    model, batch = _model(vat_weight=0.5, entropy_weight=0.4, bound=bound), _batch()
    plain = _model(vat_weight=0.5, bound=bound)  # the same initial weights, without EntMin
    torch.manual_seed(5)
    terms = model.loss_terms(batch)
    torch.manual_seed(5)
    without = plain.loss_terms(batch)  # the same draws
    # H(q(y|x)) by hand: -sum_y q log q over the softmax of the classifier's logits, then the mean.
    q = torch.softmax(model.classifier(batch["unlabeled"]), -1)
    entropy = -(q * torch.log(q)).sum(-1).mean()
    assert 0 < entropy.item() < torch.log(torch.tensor(3.0)).item()
    assert terms["entropy"].item() == pytest.approx(entropy.item(), rel=1e-5)
    assert terms["lds"].item() == pytest.approx(without["lds"].item(), rel=1e-6)
    want = without["loss"] + 0.4 * model.weights["classify"] * entropy
    assert terms["loss"].item() == pytest.approx(want.item(), rel=1e-5)
    assert "entropy" not in without
    # The entropy trains the classifier: it is not taken on the held-constant prediction.
    model.zero_grad()
    terms["entropy"].backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.classifier.parameters())


def test_bound_unlabeled_puts_the_first_images_into_the_bound_and_all_into_vat():
    model, batch = _model(bound_unlabeled=3), _batch()
    torch.manual_seed(5)
    terms = model.loss_terms(batch)
    x_u = batch["unlabeled"]
    torch.manual_seed(5)
    m2_terms = M2.loss_terms(model, {**batch, "unlabeled": x_u[:3]})
    # U(x) over the first 3 of 8 images, by hand: M2's unlabeled bound, then its mean.
    torch.manual_seed(5)
    M2.loss_terms(model, {"labeled": batch["labeled"]})  # the labeled terms' draws come first
    by_hand = model.unlabeled_elbo(x_u[:3]).mean()
    assert terms["elbo_unlabeled"].item() == pytest.approx(by_hand.item(), rel=1e-5)
    clean = model.classifier(x_u)
    d = adversarial_direction(model.classifier, x_u, clean, 1e-6, 1)
    lds = kl_from_logits(clean, model.classifier(x_u + 0.5 * d)).mean()  # all 8 images
    assert terms["lds"].item() == pytest.approx(lds.item(), rel=1e-5)
    want = m2_terms["loss"] + model.weights["classify"] * lds
    assert terms["loss"].item() == pytest.approx(want.item(), rel=1e-5)
    # At the batch's own size it is the whole batch.
    torch.manual_seed(5)
    whole = _model(bound_unlabeled=8).loss_terms(batch)["loss"]
    torch.manual_seed(5)
    assert whole.item() == pytest.approx(_model().loss_terms(batch)["loss"].item(), rel=1e-6)


def test_at_vat_weight_zero_it_is_m2():
    model, batch = _model(vat_weight=0.0), _batch()
    torch.manual_seed(5)
    terms = model.loss_terms(batch)
    torch.manual_seed(5)
    assert "lds" not in terms
    assert torch.equal(terms["loss"], M2.loss_terms(model, batch)["loss"])


def test_without_the_bound_only_the_classifier_learns():
    model, batch = _model(bound=False), _batch()
    terms = model.loss_terms(batch)
    assert set(terms) == {"loss", "class_nll", "lds"}
    want = model.weights["classify"] * (terms["class_nll"] + terms["lds"])
    assert terms["loss"].item() == pytest.approx(want.item(), rel=1e-6)
    terms["loss"].backward()
    assert all(p.grad is None for p in model.decoder.parameters())
    assert all(p.grad is None for p in model.encoder.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.classifier.parameters())


def test_classifier_dims_give_q_y_x_vats_batch_normalised_network():
    from ssvae.nets import BatchNormMLP, batch_norms

    model = _model(**CLASSIFIERS["batch_norm"])
    assert isinstance(model.classifier, BatchNormMLP) and len(batch_norms(model.classifier)) == 3
    assert model.classifier(torch.zeros(2, 6)).shape == (2, 3)
    assert not batch_norms(_model().classifier)


def test_before_validation_its_batch_norm_averages_are_those_over_the_training_images():
    from types import SimpleNamespace

    from ssvae.nets import batch_norms, recompute_running_stats

    model = _model(**CLASSIFIERS["batch_norm"]).eval()
    images = torch.randn(40, 6, generator=torch.Generator().manual_seed(3))
    model._trainer = SimpleNamespace(datamodule=SimpleNamespace(training_inputs=lambda: [images]))
    model.on_validation_epoch_start()
    reference = _model(**CLASSIFIERS["batch_norm"])
    recompute_running_stats(reference.classifier, [images], reference.classifier)
    pairs = zip(batch_norms(model.classifier), batch_norms(reference.classifier), strict=True)
    for ours, want in pairs:
        assert ours.num_batches_tracked == 1
        torch.testing.assert_close(ours.running_mean, want.running_mean)
        torch.testing.assert_close(ours.running_var, want.running_var)
    assert not model.training  # and validation still runs in evaluation mode


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("epsilon", 0.0),
        ("xi", -1.0),
        ("vat_weight", -1.0),
        ("entropy_weight", -0.5),
        ("classifier_dims", []),
        ("bound_unlabeled", 0),
    ],
)
def test_bad_settings_name_their_field(field, value):
    with pytest.raises(ConfigError, match=f"model.{field}="):
        _model(**{field: value})


def test_without_its_bound_it_is_named_apart_in_results_tables():
    from ssvae.models.needs import name_in_tables

    settings = {"_target_": "ssvae.models.m2_vat.M2VAT", "name": "m2_vat", "bound": True}
    assert name_in_tables(settings) == "m2_vat"
    assert name_in_tables({**settings, "bound": False}) == "m2_vat_no_bound"
    # A model without the method keeps its configured name, or its class name.
    assert name_in_tables({"_target_": "ssvae.models.m2.M2"}) == "m2"


def test_the_settings_are_kept_in_the_checkpoints_hyperparameters():
    model = _model(vat_weight=0.5, epsilon=0.7, bound=False)
    assert model.hparams.vat_weight == 0.5 and model.hparams.epsilon == 0.7
    assert model.hparams.bound is False and model.hparams.z_dim == 2


# Supervised network on digits at 50 labels, 30 epochs: 82-94 % test accuracy (test_models).
SUPERVISED_FLOOR = 0.8


@pytest.mark.parametrize(
    "classifier",
    [[], ["model.classifier_dims=[128,128]"], ["+model.entropy_weight=1.0"]],
    ids=["m2", "batch_norm", "entmin"],
)
def test_a_short_digits_run_beats_the_supervised_network(compose_cfg, classifier):
    cfg = compose_cfg("model=m2_vat", "data.num_labels=50", "trainer.max_epochs=20", *classifier)
    record = train(cfg)
    assert record["status"] == "ok" and record["test_acc"] > SUPERVISED_FLOOR
    assert record["model"] == "m2_vat"
