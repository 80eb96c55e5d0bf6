"""ssvae.SemiSupervisedClassifier: scikit-learn's API over the CLI's training."""

import logging
from pathlib import Path

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from ssvae import SemiSupervisedClassifier

NAMES = np.array(list("abcdefghij"))


@pytest.fixture(autouse=True)
def quiet_lightning():
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)


def _digits(num_labels: int = 200):
    x, y = load_digits(return_X_y=True)
    x = x / 16.0
    semi = NAMES[y].astype(object)
    semi[np.random.default_rng(0).permutation(len(y))[num_labels:]] = -1
    return x, y, semi


def test_fit_with_minus_one_for_unlabeled_rows_and_string_classes(tmp_path):
    x, y, semi = _digits()
    clf = SemiSupervisedClassifier(
        model="vat",
        max_epochs=10,
        overrides=("model.hidden_dims=[64,64]", "model.epsilon=0.3"),
        work_dir=str(tmp_path),
    )
    clf.fit(x[:1500], semi[:1500])
    assert list(clf.classes_) == list(NAMES)
    proba = clf.predict_proba(x[1500:])
    np.testing.assert_allclose(proba.sum(1), 1.0, atol=1e-5)
    assert set(clf.predict(x[1500:])) <= set(NAMES)
    # 200 labels, 10 epochs: well above chance (0.1); the supervised network gets ~0.85.
    assert clf.score(x[1500:], NAMES[y[1500:]]) > 0.8
    # The same data module, config and result file as ssvae-train.
    assert (tmp_path / "run" / "result.json").is_file()
    labeled = int((semi[:1500] != -1).sum())
    held_out = max(10, round(0.1 * labeled))  # the validation rows, at least one per class
    assert clf.result_["model"] == "vat" and clf.result_["num_labels"] == labeled - held_out
    assert clf.n_features_in_ == 64


def test_params_clone_pipeline_and_cross_validation():
    clf = SemiSupervisedClassifier(model="supervised", max_epochs=30, seed=3)
    assert clf.get_params()["seed"] == 3
    assert clone(clf).set_params(max_epochs=4).get_params()["max_epochs"] == 4
    assert clf.max_epochs == 30
    x, y, _ = _digits()
    pipe = make_pipeline(StandardScaler(), clf)  # standardised: the run sees Gaussian features
    scores = cross_val_score(pipe, x[:600], y[:600], cv=2)
    # Measured: 0.84 and 0.76 (300 training rows a fold; chance 0.1).
    assert scores.shape == (2,) and scores.min() > 0.7


def test_inputs_it_cannot_use_fail_clearly():
    x, y, _ = _digits()
    clf = SemiSupervisedClassifier(model="supervised", max_epochs=1)
    with pytest.raises(ValueError, match="no labeled row"):
        clf.fit(x[:50], np.full(50, -1))
    with pytest.raises(ValueError, match="Unknown label type"):
        clf.fit(x[:50], np.linspace(0, 1, 50))


# scikit-learn's estimator checks on the supervised network (each check fits, so a small one).
# check_classifiers_classes is expected to fail: it fits binary labels {-1, 1}, and -1 marks an
# unlabeled row here, as in sklearn.semi_supervised.
@parametrize_with_checks(
    [
        SemiSupervisedClassifier(
            model="supervised", max_epochs=20, overrides=("model.hidden_dims=[32]",)
        )
    ],
    expected_failed_checks=lambda est: {
        "check_classifiers_classes": "-1 marks unlabeled rows (sklearn.semi_supervised's rule)"
    },
)
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)


def test_the_estimator_page_shows_the_example_script_as_it_is():
    # docs/estimator.md's output came from scripts/estimator_example.py: the page's code block
    # must be that script (less its docstring), or the output beside it is not what it prints.
    root = Path(__file__).resolve().parent.parent
    page = (root / "docs" / "estimator.md").read_text()
    shown = page.split("```python\n", 1)[1].split("```", 1)[0]
    script = (root / "scripts" / "estimator_example.py").read_text()
    assert shown.strip() == script.split('"""', 2)[2].strip()
