"""ADGM and SDGM (Maaløe et al. 2016): bounds against hand computation, enumeration against a
loop over classes, prediction averaging, and a short digits run."""

from types import SimpleNamespace

import lightning as L
import pytest
import torch
import torch.nn.functional as F

from ssvae import elbo
from ssvae.errors import ConfigError
from ssvae.models.adgm import ADGM
from ssvae.models.sdgm import SDGM
from ssvae.train import train
from tests.conftest import load_script

K, D = 3, 5


@pytest.fixture
def no_sampling(monkeypatch):
    """a and z at their means, so that batched and looped computations see the same values."""
    monkeypatch.setattr(elbo, "reparameterize", lambda mean, logvar: mean)


def _model(cls=ADGM, **kwargs):
    torch.manual_seed(0)
    settings = dict(
        x_dim=D,
        num_classes=K,
        num_labeled=6,
        num_unlabeled=30,
        a_dim=2,
        z_dim=3,
        hidden_dims=[8],
        binarize=False,
    )
    return cls(**{**settings, **kwargs})


def _by_hand(model, x, y, beta=1.0):
    """Eq. (8) written out term by term for one draw (the means) of a and z; beta weighs every
    latent term (a KL warm-up)."""
    a_mean, a_logvar = model.q_a(x)
    a = a_mean.unsqueeze(0)
    onehot = F.one_hot(y, K).float()
    z_mean, z_logvar = model.q_z(x, a, onehot)
    z = z_mean
    if isinstance(model, SDGM):
        log_px = elbo.bernoulli_log_prob(model.p_x(onehot, z, a), x)
        log_pa = elbo.gaussian_log_prob(a, *model.p_a(onehot, z))
    else:
        log_px = elbo.bernoulli_log_prob(model.p_x(onehot, z), x)
        log_pa = elbo.gaussian_log_prob(a, *model.p_a(x, onehot, z))
    log_pz = -0.5 * (z.pow(2) + torch.log(torch.tensor(2 * torch.pi))).sum(-1)
    log_qz = elbo.gaussian_log_prob(z, z_mean, z_logvar)
    log_qa = elbo.gaussian_log_prob(a, a_mean, a_logvar)
    latent = log_pz + log_pa - log_qz - log_qa
    return (log_px + torch.log(torch.tensor(1 / K)) + beta * latent)[0]


@pytest.mark.parametrize("cls", [ADGM, SDGM])
def test_labeled_bound_equals_the_hand_computed_sum(no_sampling, cls):
    model = _model(cls)
    x, y = torch.rand(4, D).round(), torch.tensor([0, 2, 1, 0])
    torch.testing.assert_close(model.labeled_elbo(x, y), _by_hand(model, x, y))


@pytest.mark.parametrize("beta", [1.0, 0.25])
@pytest.mark.parametrize("cls", [ADGM, SDGM])
def test_unlabeled_bound_equals_the_explicit_loop_over_classes(no_sampling, cls, beta):
    model = _model(cls)
    model.kl_weight = lambda: beta
    x = torch.rand(4, D).round()
    a = model.q_a(x)[0]
    q_y = F.softmax(model.q_y(x, a), -1)
    log_qa = elbo.gaussian_log_prob(a, *model.q_a(x))
    looped = torch.zeros(4)
    for k in range(K):
        y = torch.full((4,), k)
        # L(x, y, a) without -beta log q(a|x)
        looped += q_y[:, k] * (_by_hand(model, x, y, beta) + beta * log_qa)
    looped += -(q_y * q_y.log()).sum(-1) - beta * log_qa
    torch.testing.assert_close(model.unlabeled_elbo(x), looped)


@pytest.mark.parametrize("cls", [ADGM, SDGM])
def test_kl_warm_up_weighs_every_latent_term_by_beta(no_sampling, cls):
    model = _model(cls)
    model.kl_weight = lambda: 0.25
    x, y = torch.rand(4, D).round(), torch.tensor([0, 2, 1, 0])
    torch.testing.assert_close(model.labeled_elbo(x, y), _by_hand(model, x, y, beta=0.25))


def test_kl_warm_up_rises_with_training_steps_and_evaluation_uses_the_bound():
    model = _model(kl_warmup_epochs=2)
    model._trainer = SimpleNamespace(global_step=5, num_training_batches=10)
    assert model.kl_weight() == pytest.approx(0.25)  # half an epoch of two
    model._trainer.global_step = 40
    assert model.kl_weight() == 1.0  # warmed up: the bound itself
    model._trainer.global_step = 5
    model.eval()
    assert model.kl_weight() == 1.0
    assert _model().train().kl_weight() == 1.0  # no warm-up
    with pytest.raises(ConfigError, match="kl_warmup_epochs=-1 must be >= 0"):
        _model(kl_warmup_epochs=-1)


def test_prediction_with_one_sample_is_that_samples_q_y():
    model = _model(eval_samples=1).eval()
    x = torch.rand(6, D)
    torch.manual_seed(3)
    averaged = model.classify(x)
    torch.manual_seed(3)
    a, _ = model.sample_a(x, 1)
    torch.testing.assert_close(averaged, F.log_softmax(model.q_y(x, a[0]), -1))
    many = _model(eval_samples=50).eval().classify(x)
    torch.testing.assert_close(many.exp().sum(-1), torch.ones(6))  # still a distribution


def test_gradient_clipping_is_the_models_default(compose_cfg):
    model = _model(gradient_clip_norm=5.0)
    calls = []
    model.clip_gradients = lambda optimizer, **kwargs: calls.append(kwargs)
    model.configure_gradient_clipping(None)
    model.configure_gradient_clipping(None, gradient_clip_val=1.0)
    assert calls == [
        {"gradient_clip_val": 5.0, "gradient_clip_algorithm": "norm"},
        {"gradient_clip_val": 1.0, "gradient_clip_algorithm": "norm"},
    ]


def test_the_authors_value_clipping_follows_the_norm_clipping(compose_cfg):
    model = _model(gradient_clip_norm=5.0, gradient_clip_value=1.0)
    parameter = torch.nn.Parameter(torch.zeros(3))
    parameter.grad = torch.tensor([30.0, -0.4, 0.0])  # norm 30: scaled to 5, then 5 -> 1
    optimizer = torch.optim.SGD([parameter], lr=0.1)
    trainer = L.Trainer(logger=False, enable_checkpointing=False, gradient_clip_val=5.0)
    model.trainer = trainer
    model.configure_gradient_clipping(optimizer, gradient_clip_val=5.0)
    torch.testing.assert_close(parameter.grad, torch.tensor([1.0, -0.4 * 5 / 30, 0.0]))


@pytest.mark.parametrize("cls", [ADGM, SDGM])
def test_the_authors_initialisation_starts_every_gaussian_at_the_prior(cls):
    model = _model(cls, init="glorot", hidden_dims=[400, 300])
    x = torch.rand(4, D)
    mean, logvar = model.q_a(x)
    assert mean.abs().max() < 0.05 and logvar.abs().max() < 0.05  # q(a|x) ~ N(0, I)
    # Hidden layers: Glorot-normal with the ReLU gain, sqrt(2) * sqrt(2 / (fan_in + fan_out)).
    hidden = model.q_z.rest[1].weight  # the 400 -> 300 layer
    assert hidden.std().item() == pytest.approx(2**0.5 * (2 / 700) ** 0.5, rel=0.05)
    default = _model(cls, hidden_dims=[400, 300]).q_z.rest[1].weight
    assert default.std().item() == pytest.approx((1 / (3 * 400)) ** 0.5, rel=0.05)
    with pytest.raises(ConfigError, match="model.init='he' is not known"):
        _model(cls, init="he")


@pytest.mark.parametrize("model", ["adgm", "sdgm"])
def test_a_short_digits_run_learns(compose_cfg, tmp_path, model):
    record = train(
        compose_cfg(
            f"model={model}",
            "data.num_labels=100",
            "model.hidden_dims=[64,64]",
            "model.a_dim=8",
            "model.z_dim=8",
            "model.optimizer.lr=3e-3",
            "model.eval_samples=10",
            "trainer.max_epochs=15",
        )
    )
    assert record["status"] == "ok" and record["test_acc"] > 0.7  # chance: 0.1
    # scripts/auxiliary_use.py reads the run back: q(y|a,x) at q(a|x)'s mean classifies as well.
    script = load_script("auxiliary_use")
    errors = script.auxiliary_use(tmp_path / "run", images=200)["test_error_%"]
    assert list(errors) == ["mean of q(a|x)", "a ~ q(a|x)", "a = 0", "a ~ N(0, I)"]
    assert errors["mean of q(a|x)"] < 30 and all(0 <= e <= 100 for e in errors.values())
    # ... and, while a run trains, any checkpoint of it, with a's active units.
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    use = script.auxiliary_use(tmp_path / "run", images=200, checkpoint=last)
    assert use["checkpoint"] == str(last) and use["active_units_of_a"].endswith("of 8")
    assert use["test_error_%"]["mean of q(a|x)"] < 30
    # scripts/eval_samples.py scores the run with more or fewer draws of a: 10 (the run's own
    # eval_samples) gives the run's test error; every count classifies well above chance.
    counts = load_script("eval_samples")
    by_samples = counts.eval_samples(tmp_path / "run", [1, 10, 50])["test_error_%_by_samples"]
    assert list(by_samples) == ["1", "10", "50"] and max(by_samples.values()) < 30
    assert by_samples["10"] == pytest.approx(100 * record["test_err"], abs=1.5)


def test_active_units_count_the_dimensions_whose_posterior_mean_varies():
    from ssvae.figures import active_units

    varying = torch.linspace(-1, 1, 101)  # k/50, k = -50..50: variance sum(k^2)/2500/100 = 0.3434
    means = torch.stack([varying, 0.05 * varying, torch.full((101,), 3.0)], dim=1)
    use = active_units({"u": means})["u"]
    assert use["dims"] == 3 and use["active"] == 1  # 0.05**2 * 0.3434 < 0.01 < 0.3434
    torch.testing.assert_close(
        torch.tensor(use["variance"]),
        torch.tensor([0.3434, 0.3434 * 0.0025, 0.0]),
        atol=1e-6,
        rtol=0,
    )


@pytest.mark.parametrize("cls", [ADGM, SDGM])
def test_a_collapsed_auxiliary_variable_has_no_active_units(cls):
    from ssvae.figures import active_units

    model = _model(cls).eval()
    x = torch.rand(40, D)
    head = model.q_a.rest[-1]  # q(a|x)'s mean and log-variance
    with torch.no_grad():
        head.weight.mul_(100)  # a mean that follows x
    assert active_units(model.posterior_means(x))["a"]["active"] == 2
    torch.nn.init.zeros_(head.weight)  # the same a for every x
    use = active_units(model.posterior_means(x))
    assert use["a"]["active"] == 0 and use["a"]["dims"] == 2 and use["z"]["dims"] == 3


def test_training_clips_each_element_after_the_norm(compose_cfg, monkeypatch):
    from lightning.pytorch.plugins.precision import Precision

    calls = []
    clip_by_norm = Precision.clip_grad_by_norm
    monkeypatch.setattr(Precision, "clip_grad_by_value", lambda self, opt, v: calls.append(v))
    monkeypatch.setattr(
        Precision,
        "clip_grad_by_norm",
        lambda self, opt, v: calls.append(("norm", v)) or clip_by_norm(self, opt, v),
    )
    record = train(
        compose_cfg(
            "model=sdgm",  # its defaults: norm 5, then each element to +-1 (the authors' code)
            "data.num_labels=50",
            "model.hidden_dims=[16]",
            "model.a_dim=4",
            "model.z_dim=4",
            "trainer.max_epochs=1",
        )
    )
    assert record["status"] == "ok"
    assert calls[:2] == [("norm", 5.0), 1.0] and len(calls) == 2 * record["steps"]


def test_a_frozen_q_a_keeps_its_random_features_of_x_and_the_rest_trains():
    model = _model(init="glorot", q_a="frozen")
    x, y = torch.rand(40, D), torch.arange(6) % K
    # Glorot-normal output layer: a's mean follows x, unlike the near-N(0, I) start of "learned".
    spread = model.q_a(x)[0].std(0).mean()
    assert spread > 10 * _model(init="glorot").q_a(x)[0].std(0).mean()
    q_a_before = {k: v.clone() for k, v in model.q_a.state_dict().items()}
    q_y_before = model.q_y.rest[-1].weight.clone()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.1)
    (-model.unlabeled_elbo(x).mean() + model.class_nll(x[:6], y)).backward()
    optimizer.step()
    assert all(p.grad is None for p in model.q_a.parameters())
    assert all(torch.equal(v, q_a_before[k]) for k, v in model.q_a.state_dict().items())
    assert not torch.equal(model.q_y.rest[-1].weight, q_y_before)
    with pytest.raises(ConfigError, match="model.q_a='fixed' is not known"):
        _model(q_a="fixed")
