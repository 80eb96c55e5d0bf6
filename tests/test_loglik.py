"""Importance-weighted estimates of log p(x) for M1's VAE and M2."""

import torch

from ssvae import elbo
from ssvae.models.m2 import M2
from ssvae.models.vae import VAE


def test_importance_weighted_bound_of_equal_weights_is_their_value():
    log_w = torch.full((7, 3), -2.5)
    torch.testing.assert_close(elbo.importance_weighted_bound(log_w), torch.full((3,), -2.5))
    # Two weights e^0 and e^-inf average to 1/2.
    two = torch.tensor([[0.0], [-float("inf")]])
    torch.testing.assert_close(elbo.importance_weighted_bound(two), torch.log(torch.tensor([0.5])))


def _bounds(model, x, samples_list, repeats=20):
    torch.manual_seed(0)
    elbos = torch.stack([model.test_elbo(x).mean() for _ in range(repeats)]).mean()
    iw = [
        torch.stack([model.log_px_estimate(x, k).mean() for _ in range(repeats)]).mean()
        for k in samples_list
    ]
    return elbos, iw


def test_vae_bound_is_above_the_elbo_and_rises_with_k():
    torch.manual_seed(1)
    vae = VAE(x_dim=12, z_dim=3, hidden_dims=[16]).eval()
    x = torch.rand(64, 12).round()
    elbo_mean, (iw1, iw10, iw100) = _bounds(vae, x, [1, 10, 100])
    assert abs(iw1 - elbo_mean) < 0.3  # one sample: the same bound in expectation
    assert elbo_mean < iw10 < iw100


def test_m2_bound_sums_classes_out_and_is_above_the_unlabeled_elbo():
    torch.manual_seed(2)
    m2 = M2(x_dim=12, num_classes=3, num_labeled=10, num_unlabeled=50, z_dim=3, hidden_dims=[16])
    m2.eval()
    x = torch.rand(64, 12).round()
    elbo_mean, (iw1, iw20) = _bounds(m2, x, [1, 20])
    assert elbo_mean < iw1 < iw20  # enumerating y with p(y) beats q(y|x)'s weighting


def test_m2_estimate_equals_a_loop_over_classes_and_samples():
    torch.manual_seed(3)
    m2 = M2(x_dim=6, num_classes=2, num_labeled=4, num_unlabeled=4, z_dim=2, hidden_dims=[8]).eval()
    x = torch.rand(5, 6).round()
    torch.manual_seed(9)
    batched = m2.log_px_estimate(x, samples=4, chunk=4)
    torch.manual_seed(9)
    mean, logvar = m2.encoder(x, torch.eye(2).unsqueeze(1))
    z = elbo.reparameterize(mean.expand(4, *mean.shape), logvar.expand(4, *logvar.shape))
    terms = []
    for k in range(4):
        for y in range(2):
            onehot = torch.nn.functional.one_hot(torch.full((5,), y), 2).float()
            log_px = elbo.bernoulli_log_prob(m2.decoder(onehot, z[k, y]), x)
            log_q = elbo.gaussian_log_prob(z[k, y], mean[y], logvar[y])
            terms.append(
                log_px
                + torch.log(torch.tensor(0.5))
                - 0.5 * (z[k, y].pow(2) + torch.log(torch.tensor(2 * torch.pi))).sum(-1)
                - log_q
            )
    loop = torch.logsumexp(torch.stack(terms), 0) - torch.log(torch.tensor(4.0))
    torch.testing.assert_close(batched, loop)
