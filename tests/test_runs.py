"""Sweeps made by older versions keep resuming: their settings digests must not move."""

from omegaconf import OmegaConf

from ssvae.models.needs import takes_pretrained_vae
from ssvae.pretrain import cache_key
from ssvae.runs import M1_BEFORE, M1_NOW, fingerprint, upgrade_config


def test_models_built_on_m1_are_known_by_their_constructor():
    assert takes_pretrained_vae("ssvae.models.m1.M1")
    assert takes_pretrained_vae("ssvae.models.m1m2.M1M2")
    for target in ("ssvae.models.m2.M2", "ssvae.models.estimator.EstimatorClassifier"):
        assert not takes_pretrained_vae(target)
    assert not takes_pretrained_vae("ssvae.models.nowhere.Nothing")


def as_saved_before_uses_vae_went(cfg):
    """What a run config looked like when model configs carried ``uses_vae``."""
    old = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
    if old.model._target_ == M1_NOW:
        old.model._target_ = M1_BEFORE
    if takes_pretrained_vae(cfg.model._target_):
        old.model.uses_vae = True
    return old


def test_digests_and_saved_configs_from_before_uses_vae_went(compose_cfg):
    for model in ("m1", "m1m2", "svm", "m2"):
        cfg = compose_cfg(f"model={model}")
        old = as_saved_before_uses_vae_went(cfg)
        assert fingerprint(old) == fingerprint(cfg), model
        # ssvae-predict upgrades the old config to today's classes and keys.
        upgraded = upgrade_config(old)
        assert upgraded.model._target_ == cfg.model._target_ and "uses_vae" not in upgraded.model


def test_settings_added_later_at_their_neutral_values_leave_the_digest(compose_cfg):
    cfg = compose_cfg("model=m2")
    assert cfg.model.prior_y == "uniform"
    without = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
    without.model.pop("prior_y")
    assert fingerprint(without) == fingerprint(cfg)
    assert fingerprint(compose_cfg("model=m2", "model.prior_y=labeled")) != fingerprint(cfg)


def test_vae_cache_keys_outlive_settings_added_at_their_neutral_values(compose_cfg):
    # M1's VAEs cached before kl_warmup_epochs existed are found again (and not retrained).
    cfg = compose_cfg("model=m1m2")
    before = OmegaConf.create(OmegaConf.to_container(cfg.vae, resolve=True))
    before.model.pop("kl_warmup_epochs")
    assert cache_key("mnist", 0, before, "bf16-mixed") == cache_key(
        "mnist", 0, cfg.vae, "bf16-mixed"
    )
    warm = compose_cfg("model=m1m2", "vae.model.kl_warmup_epochs=10")
    assert cache_key("mnist", 0, warm.vae, "bf16-mixed") != cache_key(
        "mnist", 0, cfg.vae, "bf16-mixed"
    )


def test_gradient_clipping_is_a_plain_override_and_off_by_default_leaves_the_digest(compose_cfg):
    cfg = compose_cfg("model=m2")
    assert cfg.trainer.gradient_clip_val is None
    before = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
    before.trainer.pop("gradient_clip_val")  # a run made before the key existed
    assert fingerprint(before) == fingerprint(cfg)
    clipped = compose_cfg("model=m2", "trainer.gradient_clip_val=5")
    assert clipped.trainer.gradient_clip_val == 5
    assert fingerprint(clipped) != fingerprint(cfg)


def test_weight_averaging_off_leaves_the_digest_and_on_changes_it(compose_cfg):
    cfg = compose_cfg("model=m2")
    before = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
    before.pop("weight_averaging")  # a run made before the group existed
    assert fingerprint(before) == fingerprint(cfg)
    ema = compose_cfg("model=m2", "weight_averaging=ema")
    assert fingerprint(ema) != fingerprint(cfg)
    assert fingerprint(
        compose_cfg("model=m2", "weight_averaging=ema", "weight_averaging.decay=0.99")
    ) != fingerprint(ema)
