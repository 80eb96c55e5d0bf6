import math
from types import SimpleNamespace

import torch

from ssvae import elbo
from ssvae.models.vae import VAE


def test_kl_against_hand_computed_value():
    mean = torch.tensor([1.0, 0.0])
    logvar = torch.tensor([0.0, math.log(2.0)])
    # 1/2 (1 + 1 - 1 - 0) + 1/2 (0 + 2 - 1 - ln 2)
    expected = 0.5 + 0.5 * (1.0 - math.log(2.0))
    assert math.isclose(
        elbo.gaussian_kl_standard_normal(mean, logvar).item(), expected, rel_tol=1e-6
    )


def test_kl_matches_torch_distributions():
    mean, logvar = torch.randn(4, 3), torch.randn(4, 3)
    q = torch.distributions.Normal(mean, torch.exp(0.5 * logvar))
    p = torch.distributions.Normal(torch.zeros(3), torch.ones(3))
    expected = torch.distributions.kl_divergence(q, p).sum(-1)
    torch.testing.assert_close(elbo.gaussian_kl_standard_normal(mean, logvar), expected)


def test_bernoulli_log_prob_against_hand_computed_value():
    logits = torch.tensor([0.0, math.log(3.0)])  # p = 0.5, 0.75
    x = torch.tensor([1.0, 0.0])
    expected = math.log(0.5) + math.log(0.25)
    assert math.isclose(elbo.bernoulli_log_prob(logits, x).item(), expected, rel_tol=1e-6)


def test_bernoulli_log_prob_broadcasts_over_classes():
    logits, x = torch.randn(3, 2, 5), torch.rand(2, 5).round()
    per_class = torch.stack([elbo.bernoulli_log_prob(logits[k], x) for k in range(3)])
    torch.testing.assert_close(elbo.bernoulli_log_prob(logits, x), per_class)


def test_gaussian_log_prob_matches_torch_distributions():
    x, mean, logvar = torch.randn(4, 3), torch.randn(4, 3), torch.randn(4, 3)
    expected = torch.distributions.Normal(mean, torch.exp(0.5 * logvar)).log_prob(x).sum(-1)
    torch.testing.assert_close(elbo.gaussian_log_prob(x, mean, logvar), expected)


def test_entropy_of_uniform_and_certain_distributions():
    assert math.isclose(
        elbo.categorical_entropy(torch.zeros(10)).item(), math.log(10), rel_tol=1e-6
    )
    assert elbo.categorical_entropy(torch.tensor([100.0, -100.0])).item() < 1e-6


def test_labeled_elbo_is_reconstruction_plus_prior_minus_kl():
    value = elbo.labeled_elbo(torch.tensor(-80.0), math.log(0.1), torch.tensor(5.0))
    assert math.isclose(value.item(), -80.0 + math.log(0.1) - 5.0, rel_tol=1e-6)


def test_unlabeled_elbo_against_hand_computed_value():
    # Two classes, one example: q(y|x) = (0.25, 0.75), L(x, 0) = -10, L(x, 1) = -20.
    logits = torch.tensor([[0.0, math.log(3.0)]])
    per_class = torch.tensor([[-10.0], [-20.0]])  # (K, B)
    entropy = -(0.25 * math.log(0.25) + 0.75 * math.log(0.75))
    expected = 0.25 * -10.0 + 0.75 * -20.0 + entropy
    assert math.isclose(elbo.unlabeled_elbo(per_class, logits).item(), expected, rel_tol=1e-6)


def test_reparameterize_has_the_right_moments_and_gradients():
    torch.manual_seed(0)
    mean = torch.full((200_000,), 2.0, requires_grad=True)
    logvar = torch.full((200_000,), math.log(0.25), requires_grad=True)
    z = elbo.reparameterize(mean, logvar)
    assert abs(z.mean().item() - 2.0) < 0.01 and abs(z.std().item() - 0.5) < 0.01
    z.sum().backward()
    assert torch.allclose(mean.grad, torch.ones_like(mean))


def test_kl_warmup_weight_rises_linearly_then_stays_at_one():
    assert elbo.kl_warmup_weight(0.0, 10) == 0.0
    assert elbo.kl_warmup_weight(2.5, 10) == 0.25
    assert elbo.kl_warmup_weight(10.0, 10) == 1.0
    assert elbo.kl_warmup_weight(37.0, 10) == 1.0
    assert elbo.kl_warmup_weight(0.0, 0) == 1.0  # off: the plain bound from the first step


def test_vae_warmup_loss_weighs_the_kl_by_beta():
    torch.manual_seed(0)
    vae = VAE(x_dim=6, z_dim=2, hidden_dims=[4], binarize=False, kl_warmup_epochs=4)
    x = torch.rand(5, 6)
    torch.manual_seed(1)
    log_px, kl = vae.elbo_terms(x)
    torch.manual_seed(1)
    assert torch.allclose(vae.elbo(x), log_px - kl)
    # Half-way through the second of four warm-up epochs: beta = 1.5 / 4.
    vae._trainer = SimpleNamespace(num_training_batches=10, current_epoch=1)
    vae.log = lambda *args, **kwargs: None
    torch.manual_seed(1)
    loss = vae.training_step(x, batch_idx=5)
    assert torch.allclose(loss, -(log_px - 0.375 * kl).mean())
