import json

import pytest

from tests.conftest import run_train, two_job_sweep


def test_two_job_multirun_writes_the_aggregated_table(tmp_path):
    sweep = tmp_path / "sweep"
    result = run_train(tmp_path, *two_job_sweep(sweep))
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(p.name for p in sweep.glob("*/result.json")) == ["result.json"] * 2
    # One folder per combination, named by its overrides.
    names = sorted(p.parent.name for p in sweep.glob("*/result.json"))
    assert names[0].startswith("data.num_labels=20,") and "data.num_labels=50," in names[1]
    rows = json.loads((sweep / "results.json").read_text())
    assert [(r["num_labels"], r["runs"]) for r in rows] == [(20, 1), (50, 1)]
    assert "| digits | m2 | model.hidden_dims=[32] model.z_dim=4 trainer.max_epochs=2 | 20 |" in (
        result.stdout
    )  # the table is printed at the end
    assert (sweep / "results.md").is_file() and (sweep / "results.png").is_file()


def test_bad_setting_exits_with_one_clear_line(tmp_path):
    result = run_train(tmp_path, "data.num_labels=55", f"hydra.run.dir={tmp_path}", timeout=120)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "ssvae: error: data.num_labels=55 cannot be balanced across 10 classes; "
        "use a multiple of 10, or data.label_selection=stratified"
    )
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("search", "model"),
    [("m2_optuna", ["model.z_dim=2"]), ("vat_optuna", [])],
    ids=["m2", "vat"],
)
def test_optuna_search_minimises_validation_error_over_trials(tmp_path, search, model):
    sweep = tmp_path / "search"
    result = run_train(
        tmp_path,
        "-m",
        f"hparams_search={search}",
        "hydra.sweeper.n_trials=2",
        "model.hidden_dims=[16]",
        *model,
        "trainer.max_epochs=2",
        "trainer.enable_progress_bar=false",
        f"hydra.sweep.dir={sweep}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    best = (sweep / "optimization_results.yaml").read_text()
    records = [json.loads(p.read_text()) for p in sweep.glob("*/result.json")]
    assert len(records) == 2
    # Optuna's best value is a trial's validation error, not its test error.
    best_value = float(best.split("best_value:")[1].split()[0])
    assert best_value == min(1 - r["best_val_acc"] for r in records)
