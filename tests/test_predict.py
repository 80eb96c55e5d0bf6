"""Using a trained run: probabilities from every model, calibration, ssvae-predict."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

from ssvae.calibration import calibration_metrics, fit_temperature
from ssvae.errors import DataError
from ssvae.predict import predict
from ssvae.train import train


def test_temperature_scaling_lowers_the_nll_of_an_overconfident_model():
    torch.manual_seed(0)
    labels = torch.randint(0, 5, (2000,))
    # Right 70 % of the time, but with logits scaled up 8x: far too sure of itself.
    right = torch.rand(2000) < 0.7
    predicted = torch.where(right, labels, (labels + 1) % 5)
    logits = 8.0 * torch.nn.functional.one_hot(predicted, 5).float() + torch.randn(2000, 5)
    before = calibration_metrics(logits, labels)
    temperature = fit_temperature(logits, labels)
    after = calibration_metrics(logits, labels, temperature)
    assert temperature > 2.0
    assert after["nll"] < before["nll"] - 0.5 and after["ece"] < before["ece"] / 3
    assert after["acc"] == before["acc"]  # scaling never changes the argmax


@pytest.fixture(scope="module")
def digits_runs(tmp_path_factory):
    """One tiny run per kind of model on digits, calibrated, with the folders they wrote."""
    from hydra import compose, initialize_config_dir

    from ssvae.train import CONFIG_DIR

    root = tmp_path_factory.mktemp("runs")
    runs = {}
    for model in (
        "m2",
        "m1m2",
        "m1",
        "supervised",
        "svm",
        "logreg",
        "label_spreading",
        "self_training",
        "vat",
        "ladder",
        "mean_teacher",
    ):
        out = root / model
        with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
            cfg = compose(
                "config",
                overrides=[
                    f"model={model}",
                    f"paths.output_dir={out}",
                    "trainer.enable_progress_bar=false",
                    "trainer.max_epochs=3",
                    "data.num_labels=50",
                    "calibrate=true",
                    "reliability_diagram=true",
                    "log_likelihood_samples=20",
                    "vae.max_epochs=5",
                    "vae.model.hidden_dims=[64]",
                    *(
                        ["model.hidden_dims=[32]", "model.z_dim=4"]
                        if model in ("m2", "m1m2")
                        else []
                    ),
                    *(["model.hidden_dims=[32,32]"] if model in ("vat", "mean_teacher") else []),
                    *(
                        ["model.hidden_dims=[32]", "model.denoising_weights=[1000,10,0.1]"]
                        if model == "ladder"
                        else []
                    ),
                    f"paths.cache_dir={root / 'cache'}",
                ],
            )
        record = train(cfg)
        (out / ".hydra").mkdir(exist_ok=True)  # what Hydra saves beside a run
        (out / ".hydra" / "config.yaml").write_text(__import__("omegaconf").OmegaConf.to_yaml(cfg))
        runs[model] = (out, record)
    return runs


def test_every_model_records_nll_ece_and_a_temperature(digits_runs):
    for model, (out, record) in digits_runs.items():
        assert 0 < record["test_nll"] < 10 and 0 <= record["test_ece"] <= 1, model
        calibration = record["calibration"]
        assert calibration["val_after"]["nll"] <= calibration["val_before"]["nll"] + 1e-6, model
        assert (out / "reliability.png").stat().st_size > 5000
        # Models of x record how well they model it; the baselines have nothing to say.
        if model in ("m2", "m1"):  # M1: its VAE's
            assert record["test_elbo"] < record["test_log_px"] < 0
        else:
            assert "test_log_px" not in record, model


def test_predict_writes_rows_with_probabilities_that_sum_to_one(digits_runs):
    for model, (out, record) in digits_runs.items():
        summary = predict(out, split="test")
        table = pd.read_csv(out / "predictions_test.csv")
        probs = table[[f"p_{i}" for i in range(10)]].to_numpy()
        np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-4, err_msg=model)
        assert list(table.columns[:3]) == ["row", "label", "confidence"]
        assert len(table) == 360 and summary["rows_with_labels"] == 360
        # The test split's accuracy equals the run's own (estimators are refitted, same seed).
        assert summary["accuracy"] == pytest.approx(record["test_acc"], abs=1e-6), model


def test_predict_labels_the_unlabeled_pool_with_its_hidden_labels(digits_runs):
    out, _ = digits_runs["m2"]
    summary = predict(out)
    table = pd.read_csv(out / "predictions_unlabeled.csv")
    assert len(table) == 1257 - 50 == summary["rows"] == summary["rows_with_labels"]
    assert summary["accuracy"] > 0.5 and json.loads(
        (out / "predictions_unlabeled.json").read_text()
    )


def test_predict_reads_a_users_file(digits_runs, tmp_path):
    from ssvae.data.datasets import load_digits_splits

    out, _ = digits_runs["supervised"]
    test = load_digits_splits().test
    path = tmp_path / "new.npz"
    np.savez(path, x=test.x[:20], y=test.y[:20])
    summary = predict(out, input_file=path, out=tmp_path / "p.csv")
    assert summary["rows"] == 20 and (tmp_path / "p.csv").is_file()


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: (p / "empty").mkdir() or (p / "empty", None), "is not a finished run"),
        (lambda p: (p, np.zeros((3, 10))), "10 features per row, but the run was trained on 64"),
        (lambda p: (p, np.full((3, 64), np.nan)), "row 0 has a NaN"),
        # Pixels of 0..256 for a run trained on [0, 1]: labelled silently before.
        (lambda p: (p, np.full((3, 64), 200.0)), r"values in \[200, 200\].*trained on \[0, 1\]"),
    ],
)
def test_bad_predict_input_fails_and_writes_nothing(digits_runs, tmp_path, make, message):
    run, x = make(tmp_path)
    run = digits_runs["supervised"][0] if x is not None else run
    path = None
    if x is not None:
        path = tmp_path / "bad.npz"
        np.savez(path, x=x)
    target = tmp_path / "out.csv"
    with pytest.raises(DataError, match=message):
        predict(run, input_file=path, out=target)
    assert not target.exists()


def test_a_checkpoint_of_another_run_is_refused(digits_runs, tmp_path):
    import shutil

    out, _ = digits_runs["m2"]
    other = tmp_path / "copy"
    shutil.copytree(out, other)
    for ckpt in (other / "checkpoints").glob("best-*.ckpt"):
        saved = torch.load(ckpt, weights_only=True)
        saved["ssvae"]["dataset"] = "mnist"
        torch.save(saved, ckpt)
    with pytest.raises(Exception, match="dataset='mnist'"):
        predict(other, split="test")


def test_figures_of_an_m2_run_are_pngs_of_the_expected_size(digits_runs, tmp_path):
    from PIL import Image

    from ssvae.figures import draw_figures

    out, _ = digits_runs["m2"]
    written = draw_figures(out, tmp_path / "figs", latent_points=200)
    names = sorted(p.name for p in written)
    assert names == sorted(
        [
            "conditional.png",
            "analogies.png",
            "reconstructions.png",
            "samples.png",
            "latent_map.png",
            "latent_use.png",
            "learning_curves.png",
            "confusion.png",
        ]
    )
    use = json.loads((tmp_path / "figs" / "latent_use.json").read_text())
    z = use["z"]
    z_dim = json.loads((out / "result.json").read_text())["config"]["model"]["z_dim"]
    assert z["dims"] == len(z["variance"]) == z_dim and z["threshold"] == 0.01
    assert z["active"] == sum(v > 0.01 for v in z["variance"]) and z["variance"] == sorted(
        z["variance"], reverse=True
    )
    sizes = {p.name: Image.open(p).size for p in written}
    assert sizes["conditional.png"] == (860, 700)  # (10 x 0.8 + 0.6, 8 x 0.8 + 0.6) in at 100 dpi
    assert sizes["latent_map.png"] == (1100, 500)
    assert all(p.stat().st_size > 5000 for p in written)


def test_figures_can_be_chosen_and_an_unknown_one_fails_first(digits_runs, tmp_path):
    from ssvae.errors import ConfigError
    from ssvae.figures import draw_figures

    out, _ = digits_runs["m1m2"]
    written = draw_figures(out, tmp_path / "figs", latent_points=200, only=["latent_use"])
    assert [p.name for p in written] == ["latent_use.png"]
    use = json.loads((tmp_path / "figs" / "latent_use.json").read_text())
    assert sorted(use) == ["z1", "z2"]  # M1's latent and M2's, on M1's
    with pytest.raises(ConfigError, match=r"figures \['tsne'\] are not known; allowed"):
        draw_figures(tmp_path / "not-a-run", only=["tsne"])


def test_figures_of_a_baseline_are_only_those_that_apply(digits_runs, tmp_path):
    from ssvae.figures import draw_figures

    out, _ = digits_runs["svm"]
    names = sorted(p.name for p in draw_figures(out, tmp_path / "figs", latent_points=200))
    # No decoder, nothing generated.
    assert names == ["confusion.png", "latent_map.png", "learning_curves.png"]
    for model in ("vat", "ladder", "mean_teacher"):  # classifiers only: no latents either
        out, _ = digits_runs[model]
        drawn = draw_figures(out, tmp_path / model, latent_points=200)
        assert sorted(p.name for p in drawn) == ["confusion.png", "learning_curves.png"], model


def test_confusion_counts_every_test_image_and_agrees_with_the_runs_test_error(
    digits_runs, tmp_path
):
    from ssvae.figures import draw_figures
    from ssvae.predict import load_run
    from ssvae.train import build_data

    for kind in ("m2", "svm"):
        out, _ = digits_runs[kind]
        draw_figures(out, tmp_path / kind, only=["confusion"])
        saved = json.loads((tmp_path / kind / "confusion.json").read_text())
        counts = np.array(saved["counts"])
        result = json.loads((out / "result.json").read_text())
        test_size = len(build_data(load_run(out)[0])._test[1])
        assert counts.shape == (10, 10) and counts.sum() == test_size
        assert saved["classes"] == result["data"]["class_names"]
        # The run's own test (torchmetrics, in the run's precision) against classify here: the
        # same checkpoint, so the same errors up to an image that rounding may flip.
        assert abs(saved["test_err"] - result["test_err"]) <= 1 / test_size + 1e-6
        assert saved["test_err"] == pytest.approx(1 - np.trace(counts) / test_size)
