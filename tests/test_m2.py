import math

import pytest
import torch
import torch.nn.functional as F

from ssvae import elbo
from ssvae.errors import ConfigError, TrainingError
from ssvae.models.m2 import M2, term_weights

K, D = 4, 6


@pytest.fixture
def no_sampling(monkeypatch):
    """Make z = mean so that batched and looped computations see the same z."""
    monkeypatch.setattr(elbo, "reparameterize", lambda mean, logvar: mean)


def _model(**kwargs) -> M2:
    torch.manual_seed(0)
    defaults = dict(x_dim=D, num_classes=K, num_labeled=8, num_unlabeled=92, z_dim=3)
    return M2(**{**defaults, "hidden_dims": [16], **kwargs})


def test_unlabeled_loss_equals_the_explicit_loop_over_classes(no_sampling):
    model = _model()
    x = torch.rand(5, D)
    q_y = F.softmax(model.classify(x), dim=-1)
    looped = torch.zeros(5)
    for k in range(K):
        y = F.one_hot(torch.full((5,), k), K).float()
        looped += q_y[:, k] * model.elbo(x, y)
    looped += -(q_y * q_y.log()).sum(-1)
    torch.testing.assert_close(model.unlabeled_elbo(x), looped)


def test_elbo_all_classes_matches_the_labeled_elbo_per_class(no_sampling):
    model = _model()
    x = torch.rand(3, D)
    batched = model.elbo_all_classes(x)
    assert batched.shape == (K, 3)
    for k in range(K):
        y = F.one_hot(torch.full((3,), k), K).float()
        torch.testing.assert_close(batched[k], model.elbo(x, y))


def test_alpha_is_a_tenth_of_all_training_images():
    # N = 100 labeled + 49,900 unlabeled = 50,000; alpha = 0.1 N = 5,000.
    paper = term_weights("paper", 0.1, 100, 49_900)
    assert paper == pytest.approx(
        {"labeled": 100 / 50_000, "unlabeled": 49_900 / 50_000, "classify": 0.1}
    )
    # Per labeled image, -log q(y|x) then weighs (alpha / N_l) / N relative to one image's ELBO
    # term (1 / N): 0.1 * N / N_l = 50, the original code's "total / labeled" factor.
    per_image = paper["classify"] / 100 / (paper["unlabeled"] / 49_900)
    assert per_image == pytest.approx(0.1 * 50_000 / 100)
    balanced = term_weights("balanced", 0.1, 100, 49_900)
    assert balanced == pytest.approx({"labeled": 1.0, "unlabeled": 1.0, "classify": 50.0})
    with pytest.raises(ConfigError, match="model.weighting='odd'.*allowed"):
        term_weights("odd", 0.1, 100, 49_900)


@pytest.mark.parametrize("weighting", ["paper", "balanced"])
def test_training_loss_is_the_weighted_sum_of_the_terms(no_sampling, weighting):
    model = _model(weighting=weighting)
    x_l, y_l, x_u = torch.rand(4, D), torch.tensor([0, 1, 2, 3]), torch.rand(6, D)
    model.log = lambda *args, **kwargs: None
    loss = model.training_step({"labeled": (x_l, y_l), "unlabeled": x_u}, 0)
    w = term_weights(weighting, 0.1, 8, 92)
    expected = (
        w["labeled"] * -model.elbo(x_l, F.one_hot(y_l, K).float()).mean()
        + w["unlabeled"] * -model.unlabeled_elbo(x_u).mean()
        + w["classify"] * F.cross_entropy(model.classify(x_l), y_l)
    )
    torch.testing.assert_close(loss, expected)


def test_non_finite_loss_stops_with_a_remedy():
    model = _model()
    with pytest.raises(TrainingError, match="step 0.*learning rate"):
        model.check_finite(torch.tensor(math.nan))


def test_bad_model_settings_are_named():
    with pytest.raises(ConfigError, match="model.hidden_dims"):
        _model(hidden_dims=[])
    with pytest.raises(ConfigError, match="model.z_dim"):
        _model(z_dim=0)
    with pytest.raises(ConfigError, match="model.activation='swish'.*allowed"):
        _model(activation="swish")


def test_alpha_per_label_fixes_each_labeled_images_weight_at_any_label_count():
    # 3000 labels of 50,000: the paper's alpha_scale gives each labeled image 0.1 * N / N_l.
    assert term_weights("balanced", 0.1, 3000, 47_000)["classify"] == pytest.approx(5 / 3)
    # With alpha_per_label = 50 (the paper's weight at 100 labels): alpha = 50 * 3000.
    paper = term_weights("paper", 0.1, 3000, 47_000, alpha_per_label=50)
    assert paper["classify"] == pytest.approx(50 * 3000 / 50_000)  # alpha / N
    assert term_weights("balanced", 0.1, 3000, 47_000, alpha_per_label=50)["classify"] == 50
    # alpha_scale is then ignored; the ELBO terms keep their weights.
    assert term_weights("paper", 7.0, 3000, 47_000, alpha_per_label=50) == paper
    with pytest.raises(ConfigError, match=r"model.alpha_per_label=-1 must be >= 0 or null"):
        M2(x_dim=4, num_classes=2, num_labeled=2, num_unlabeled=2, alpha_per_label=-1)


def test_the_authors_initialisation_starts_q_z_at_the_prior():
    x, y = torch.rand(5, D), F.one_hot(torch.arange(5) % K, K).float()
    mean, logvar = _model(init="glorot").encoder(x, y)
    assert mean.abs().max() < 0.05 and logvar.abs().max() < 0.05  # q(z|x,y) ~ N(0, I)
    mean, _ = _model().encoder(x, y)  # PyTorch's default init: far from the prior
    assert mean.abs().max() > 0.1
    with pytest.raises(ConfigError, match="model.init='he' is not known"):
        _model(init="he")
