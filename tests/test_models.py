import json

import pytest
import torch

from ssvae.errors import ConfigError
from ssvae.models.m1m2 import M1M2
from ssvae.models.vae import VAE
from ssvae.train import train
from tests.conftest import run_train

TINY_VAE = ["vae.model.hidden_dims=[64]", "vae.model.z_dim=8", "vae.max_epochs=3"]


@pytest.mark.parametrize(
    ("model", "floor"),
    [
        ("supervised", 0.75),
        ("logreg", 0.75),
        ("svm", 0.75),
        ("label_spreading", 0.8),
        ("self_training", 0.75),
    ],
)
def test_each_baseline_beats_chance_clearly_on_digits(compose_cfg, model, floor):
    record = train(compose_cfg(f"model={model}", "data.num_labels=50", "trainer.max_epochs=30"))
    # Measured here at 50 labels, seed 0: 82-94 % (chance: 10 %).
    assert record["status"] == "ok" and record["model"] == model
    assert record["test_acc"] > floor


def test_m1_trains_its_vae_once_and_reuses_it_across_label_counts(compose_cfg, tmp_path):
    cache = tmp_path / "cache"
    m1 = ["model=m1", f"paths.cache_dir={cache}", *TINY_VAE]
    first = train(compose_cfg(*m1, "data.num_labels=20"))
    (checkpoint,) = cache.glob("*/vae.ckpt")
    stamp = checkpoint.stat().st_mtime_ns
    cfg = compose_cfg(*m1, "data.num_labels=50")
    cfg.paths.output_dir = str(tmp_path / "second")
    second = train(cfg)
    assert first["vae"]["trained_now"] is True and second["vae"]["trained_now"] is False
    assert checkpoint.stat().st_mtime_ns == stamp and len(list(cache.glob("*/vae.ckpt"))) == 1
    assert first["vae"]["trained_at"] == second["vae"]["trained_at"]
    assert second["test_acc"] > 0.2 and "test_elbo" in second["vae"]
    # A different seed is a different VAE.
    cfg = compose_cfg(*m1, "seed=1")
    cfg.paths.output_dir = str(tmp_path / "third")
    assert train(cfg)["vae"]["trained_now"] is True
    assert len(list(cache.glob("*/vae.ckpt"))) == 2


def test_m1m2_models_the_latents_of_m1():
    torch.manual_seed(0)
    vae = VAE(x_dim=64, z_dim=8, hidden_dims=[32]).eval().requires_grad_(False)
    model = M1M2(
        x_dim=64,
        vae=vae,
        num_classes=10,
        num_labeled=20,
        num_unlabeled=80,
        z_dim=4,
        hidden_dims=[16],
    )
    x = torch.rand(5, 64)
    model.train()
    z1 = model.features(x)
    assert z1.shape == (5, 8) and not z1.requires_grad
    assert not torch.equal(z1, model.features(x))  # a fresh sample of q(z1|x) each step
    model.eval()
    torch.testing.assert_close(model.features(x), vae.encode(x)[0])  # the mean for evaluation
    assert model.classifier.first[0].in_features == 8
    mean, logvar = model.decoder(torch.eye(10).unsqueeze(1), torch.zeros(10, 5, 4))
    assert mean.shape == logvar.shape == (10, 5, 8)  # Gaussian p(z1 | y, z2)
    model.train()
    model.log = lambda *args, **kwargs: None
    loss = model.training_step({"labeled": (x, torch.arange(5)), "unlabeled": torch.rand(7, 64)}, 0)
    loss.backward()
    assert all(p.grad is None for p in model.vae.parameters())  # M1 stays frozen
    assert model.classifier.first[0].weight.grad is not None
    assert not model.vae.training  # Lightning's train() does not unfreeze it


def test_m1m2_keeps_only_the_latent_dimensions_m1_uses():
    torch.manual_seed(0)
    vae = VAE(x_dim=64, z_dim=6, hidden_dims=[32]).eval().requires_grad_(False)
    vae.latent_mean_std = [0.5, 0.01, 0.3, 0.05, 0.0, 1.2]  # dimensions 0, 2 and 5 in use
    settings = dict(vae=vae, num_classes=10, num_labeled=20, num_unlabeled=80, z_dim=4)
    model = M1M2(x_dim=64, latent_std_threshold=0.1, hidden_dims=[16], **settings).eval()
    assert model.active_dims.tolist() == [0, 2, 5]
    assert model.classifier.first[0].in_features == 3
    x = torch.rand(4, 64)
    torch.testing.assert_close(model.features(x), vae.encode(x)[0][:, [0, 2, 5]])
    # 0 keeps every dimension, as does a VAE that carries no statistics.
    assert M1M2(x_dim=64, hidden_dims=[16], **settings).active_dims.tolist() == list(range(6))
    with pytest.raises(ConfigError, match="latent_std_threshold=2 leaves none.*1.200"):
        M1M2(x_dim=64, latent_std_threshold=2, hidden_dims=[16], **settings)


def test_m1m2_runs_end_to_end(compose_cfg, tmp_path, recwarn):
    record = train(
        compose_cfg(
            "model=m1m2",
            "data.num_labels=50",
            "trainer.max_epochs=2",
            f"paths.cache_dir={tmp_path}",
            *TINY_VAE,
        )
    )
    assert record["status"] == "ok" and record["model"] == "m1m2" and record["vae"]["epochs"] == 3
    # The VAE's cache records how much each latent mean varies (which dimensions M1 uses).
    assert len(record["vae"]["latent_mean_std"]) == 8
    # The frozen VAE is in eval mode by design: no Lightning warning about it on every run.
    assert not [w for w in recwarn if "in eval mode" in str(w.message)]


def test_one_sweep_gives_one_row_per_model(tmp_path):
    sweep = tmp_path / "sweep"
    result = run_train(
        tmp_path,
        "-m",
        "model=m2,supervised,logreg,label_spreading",
        "data.num_labels=50",
        "trainer.max_epochs=2",
        "trainer.enable_progress_bar=false",
        f"hydra.sweep.dir={sweep}",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    rows = json.loads((sweep / "results.json").read_text())
    assert {r["model"] for r in rows} == {"m2", "supervised", "logreg", "label_spreading"}
    assert (sweep / "results.png").is_file()


@pytest.mark.parametrize("model", ["supervised", "svm"])
def test_each_model_says_how_it_is_fitted_and_restored(compose_cfg, tmp_path, model):
    # The entry points never ask a model's kind: a network's fit_in hands back its best
    # checkpoint, an estimator's none; load_trained restores the same predictions either way.
    from ssvae.train import build, build_callbacks, build_data, build_model

    cfg = compose_cfg(f"model={model}", "data.num_labels=50", "trainer.max_epochs=3")
    datamodule = build_data(cfg)
    model_, _ = build_model(cfg, datamodule, "digest")
    trainer = build(cfg.trainer, callbacks=build_callbacks(cfg, tmp_path), logger=False)
    fitted = model_.fit_in(trainer, datamodule)
    x, _ = next(iter(datamodule.test_dataloader()))
    if model == "svm":
        assert fitted.checkpoint is None and (fitted.epochs, fitted.steps) == (0, 0)
    else:
        assert fitted.checkpoint.endswith(".ckpt") and fitted.epochs == 3 and fitted.steps > 0
        best = torch.load(fitted.checkpoint, map_location="cpu", weights_only=True)
        model_.load_state_dict(best["state_dict"])  # what trainer.test(ckpt_path=...) tests
    assert 0.5 < fitted.best_val_acc <= 1
    expected = model_.eval().classify_full_precision(x)
    restored, _ = build_model(cfg, datamodule, "digest")
    restored.load_trained(tmp_path, datamodule)
    torch.testing.assert_close(restored.eval().classify_full_precision(x), expected)
