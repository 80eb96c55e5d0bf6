import csv
import io
import json
import os
import subprocess
import sys

import pytest

from ssvae.report import (
    PAPER_TABLE1,
    aggregate,
    by_labels_markdown,
    by_seed_markdown,
    collect_results,
    plot_error_vs_labels,
    to_csv,
    to_markdown,
    variant_of,
    write_report,
)


def _write(folder, **record):
    folder.mkdir(parents=True, exist_ok=True)
    base = {"dataset": "digits", "model": "m2", "variant": "", "status": "ok"}
    (folder / "result.json").write_text(json.dumps({**base, **record}))


def test_mean_and_std_over_seeds_with_failed_runs_counted(tmp_path):
    _write(tmp_path / "a", num_labels=50, seed=0, test_acc=0.9, test_err=0.1)
    _write(tmp_path / "b", num_labels=50, seed=1, test_acc=0.8, test_err=0.2)
    _write(tmp_path / "c", num_labels=50, seed=2, status="failed", error="nan")
    _write(tmp_path / "d", num_labels=100, seed=0, test_acc=0.95, test_err=0.05)
    (tmp_path / "e").mkdir()
    (tmp_path / "e" / "result.json").write_text("{half a reco")  # skipped, not fatal
    rows = aggregate(collect_results([tmp_path]))
    assert [(r["num_labels"], r["runs"], r["failed"]) for r in rows] == [(50, 2, 1), (100, 1, 0)]
    assert rows[0]["err_mean"] == pytest.approx(0.15)
    assert rows[0]["err_std"] == pytest.approx(0.0707107, rel=1e-5)
    assert rows[1]["err_std"] == 0.0
    markdown = to_markdown(rows)
    assert "| digits | m2 | default | 50 | 85.00 ± 7.07 | 15.00 ± 7.07 | 2 | 1 |" in markdown
    parsed = list(csv.DictReader(io.StringIO(to_csv(rows))))
    assert parsed[1]["num_labels"] == "100" and float(parsed[1]["acc_mean"]) == 0.95


def test_a_rerun_counts_once_and_variants_stay_apart(tmp_path):
    _write(tmp_path / "old", num_labels=50, seed=0, test_acc=0.5, test_err=0.5)
    _write(tmp_path / "new", num_labels=50, seed=0, test_acc=0.9, test_err=0.1)
    os.utime(tmp_path / "old" / "result.json", (1, 1))
    _write(tmp_path / "v", num_labels=50, seed=0, test_acc=0.7, test_err=0.3, variant="x=1")
    rows = aggregate(collect_results([tmp_path]))
    assert [(r["variant"], r["runs"], r["acc_mean"]) for r in rows] == [
        ("", 1, 0.9),
        ("x=1", 1, 0.7),
    ]


def _write_sweep(folder, seeds, acc, alpha, root="/data", **model):
    """Result files as a sweep saves them: each with the config that made it."""
    for seed in seeds:
        config = {
            "seed": seed,
            "data": {"num_labels": 50, "seed": seed, "root": f"{root}{seed}"},
            "model": {"alpha_scale": alpha, "random_state": seed, **model},
        }
        _write(
            folder / str(seed),
            num_labels=50,
            seed=seed,
            test_acc=acc,
            test_err=1 - acc,
            config=config,
        )


def test_a_model_renamed_by_its_settings_gets_its_own_row_old_records_too(tmp_path):
    # M2+VAT without its bound is its ablation, not the generative model: recorded as "m2_vat"
    # before the model named it, it joins the m2_vat_no_bound row all the same.
    target = "ssvae.models.m2_vat.M2VAT"
    # Seed 1's record was made since, under its new name: it is not renamed twice.
    for seed, bound, recorded in (
        (0, True, "m2_vat"),
        (0, False, "m2_vat"),
        (1, False, "m2_vat_no_bound"),
    ):
        config = {"seed": seed, "model": {"_target_": target, "name": "m2_vat", "bound": bound}}
        _write(
            tmp_path / f"{bound}{seed}",
            model=recorded,
            num_labels=100,
            seed=seed,
            test_acc=0.98,
            test_err=0.02,
            config=config,
        )
    rows = aggregate(collect_results([tmp_path]))
    assert sorted((r["model"], r["runs"]) for r in rows) == [
        ("m2_vat", 1),
        ("m2_vat_no_bound", 2),
    ]


def test_runs_made_with_other_settings_become_variants_of_their_own(tmp_path):
    # Two sweeps of the same command, made before and after a default changed: not re-runs of
    # each other, and not one row. Where the data sits (plumbing), a setting that follows the seed,
    # and one added later at its neutral value do not set runs apart.
    _write_sweep(tmp_path / "v1", (0, 1), 0.8, alpha=0.1)
    _write_sweep(tmp_path / "v2", (0,), 0.9, alpha=3, root="/elsewhere", prior_y="uniform")
    rows = aggregate(collect_results([tmp_path]))
    assert [(r["variant"], r["runs"], r["acc_mean"]) for r in rows] == [
        ("model.alpha_scale=0.1", 2, 0.8),
        ("model.alpha_scale=3", 1, 0.9),
    ]
    # The same settings stay one row, however many folders they come from.
    rows = aggregate(collect_results([tmp_path / "v1"]))
    assert [(r["variant"], r["runs"]) for r in rows] == [("", 2)]


def test_variants_made_with_the_same_settings_are_one_row(tmp_path):
    # One recipe reached two ways: an experiment config (no overrides), and the curve tool with
    # the same settings spelled as overrides and its time budget (a callback's, not a setting).
    _write_sweep(tmp_path / "sweep", (0, 1), 0.9, alpha=3)
    os.utime(tmp_path / "sweep" / "1" / "result.json", (1, 1))
    for seed, acc in ((1, 0.7), (2, 0.8)):  # seed 1 again: the newest file counts
        config = {
            "seed": seed,
            "data": {"num_labels": 50, "seed": seed},
            "model": {"alpha_scale": 3, "random_state": seed},
            "callbacks": {"learning_curve": {"budget_min": 50.0}},
        }
        _write(
            tmp_path / "curves" / str(seed),
            num_labels=50,
            seed=seed,
            test_acc=acc,
            test_err=1 - acc,
            variant="callbacks.learning_curve.budget_min=50.0 model.alpha_scale=3",
            config=config,
        )
    _write_sweep(tmp_path / "other", (0,), 0.5, alpha=1)
    _write_sweep(tmp_path / "other", (1,), 0.6, alpha=1)
    for path in (tmp_path / "other").rglob("result.json"):  # named by overrides, other settings
        record = json.loads(path.read_text())
        path.write_text(json.dumps({**record, "variant": "model.alpha_scale=1"}))
    rows = aggregate(collect_results([tmp_path]))
    assert [(r["variant"], r["runs"], r["seeds"]) for r in rows] == [
        ("", 3, "0 1 2"),
        ("model.alpha_scale=1", 2, "0 1"),
    ]
    assert rows[0]["acc_mean"] == pytest.approx((0.9 + 0.7 + 0.8) / 3)


def test_variant_ignores_the_table_axes_and_plumbing():
    overrides = ["seed=1", "data.num_labels=100", "data.root=/x", "model.lr=2", "data=mnist"]
    assert variant_of(overrides) == "model.lr=2"


def test_report_files_and_cli(tmp_path):
    _write(tmp_path / "runs" / "a", num_labels=50, seed=0, test_acc=0.9, test_err=0.1)
    rows = write_report([tmp_path / "runs"])
    assert len(rows) == 1
    names = sorted(p.name for p in (tmp_path / "runs").iterdir())
    assert names == ["a", "results.csv", "results.json", "results.md", "results.png"]
    assert (tmp_path / "runs" / "results.png").read_bytes()[:4] == b"\x89PNG"
    out = subprocess.run(
        [sys.executable, "-m", "ssvae.report", str(tmp_path / "runs"), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "| digits | m2 | default | 50 | 90.00 ± 0.00" in out.stdout
    assert (tmp_path / "results.md").is_file()
    bad = subprocess.run(
        [sys.executable, "-m", "ssvae.report", str(tmp_path / "nope")], capture_output=True
    )
    assert bad.returncode == 2 and b"not a folder" in bad.stderr


def test_plumbing_overrides_are_not_variants():
    overrides = [
        "trainer.accelerator=gpu",
        "paths.cache_dir=/c",
        "sweep_name=x",
        "vae.max_epochs=5",
    ]
    assert variant_of(overrides) == "vae.max_epochs=5"


def test_paper_reference_lines_are_drawn_for_mnist_only():
    rows = [
        {
            "dataset": "mnist",
            "model": "m2",
            "variant": "",
            "num_labels": n,
            "runs": 3,
            "err_mean": 0.1,
            "err_std": 0.01,
        }
        for n in (100, 600)
    ]
    assert plot_error_vs_labels(rows, paper=True) != plot_error_vs_labels(rows)
    # Runs told apart by their settings are all variants: the paper's line is still drawn.
    variants = [{**r, "variant": "model.alpha_scale=3"} for r in rows]
    assert plot_error_vs_labels(variants, paper=True) != plot_error_vs_labels(variants)
    digits = [{**r, "dataset": "digits"} for r in rows]
    assert plot_error_vs_labels(digits, paper=True) == plot_error_vs_labels(digits)
    assert PAPER_TABLE1["m1m2"][1][100] == 3.33 and PAPER_TABLE1["m2"][1][3000] == 3.92
    sdgm = [{**r, "model": "sdgm"} for r in rows]  # Maaløe et al.'s 1.32 % at 100 labels
    assert plot_error_vs_labels(sdgm, paper=True) != plot_error_vs_labels(sdgm)
    assert PAPER_TABLE1["adgm"][1] == {100: 0.96} and PAPER_TABLE1["sdgm"][1] == {100: 1.32}
    assert PAPER_TABLE1["vat"][1] == {100: 1.36} and PAPER_TABLE1["ladder"][1] == {100: 1.06}


def test_paper_column_gives_the_published_error_where_there_is_one(tmp_path):
    for model, seed, err in (("sdgm", 0, 0.03), ("sdgm", 1, 0.05), ("m1m2", 0, 0.04)):
        _write(
            tmp_path / f"{model}{seed}",
            dataset="mnist",
            model=model,
            num_labels=100,
            seed=seed,
            test_acc=1 - err,
            test_err=err,
        )
    _write(
        tmp_path / "m1m2_50",
        dataset="mnist",
        model="m1m2",
        num_labels=50,
        seed=0,
        test_acc=0.9,
        test_err=0.1,
    )
    _write(tmp_path / "digits", num_labels=100, seed=0, test_acc=0.9, test_err=0.1)
    rows = write_report([tmp_path], tmp_path / "out", paper=True)
    lines = (tmp_path / "out" / "results.md").read_text().splitlines()
    assert lines[0].endswith("| paper's test error % | runs | failed |")
    assert lines[1].count("|") == lines[0].count("|")
    assert "| mnist | sdgm | default | 100 | 96.00 ± 1.41 | 4.00 ± 1.41 | 1.32 | 2 | 0 |" in lines
    assert "| mnist | m1m2 | default | 100 | 96.00 ± 0.00 | 4.00 ± 0.00 | 3.33 | 1 | 0 |" in lines
    # No published number for 50 labels, nor for another data set.
    assert "| mnist | m1m2 | default | 50 | 90.00 ± 0.00 | 10.00 ± 0.00 | — | 1 | 0 |" in lines
    assert "| digits | m2 | default | 100 | 90.00 ± 0.00 | 10.00 ± 0.00 | — | 1 | 0 |" in lines
    assert "paper" not in to_markdown(rows)  # only when asked for


def test_calibration_columns_are_optional(tmp_path):
    calibrated = {"temperature": 2.0, "test_after": {"nll": 0.2, "ece": 0.01}}
    _write(
        tmp_path / "a",
        num_labels=50,
        seed=0,
        test_acc=0.9,
        test_err=0.1,
        test_nll=0.4,
        test_ece=0.05,
        calibration=calibrated,
    )
    _write(
        tmp_path / "b",
        num_labels=50,
        seed=1,
        test_acc=0.9,
        test_err=0.1,
        test_nll=0.6,
        test_ece=0.07,
    )
    rows = aggregate(collect_results([tmp_path]))
    assert "NLL" not in to_markdown(rows)
    markdown = to_markdown(rows, ["nll", "ece", "ece_calibrated", "temperature"])
    assert "| test NLL | test ECE % | test ECE %, T-scaled | T |" in markdown
    assert "| 0.500 ± 0.141 | 6.00 ± 1.41 | 1.00 ± 0.00 | 2.000 ± 0.000 |" in markdown
    with pytest.raises(ValueError, match="unknown column 'auc'"):
        to_markdown(rows, ["auc"])


def test_minutes_per_run_count_training_resumed_segments_and_m1s_pretraining(tmp_path):
    _write(tmp_path / "a", num_labels=100, seed=0, test_acc=0.9, test_err=0.1, wall_time_s=600)
    _write(
        tmp_path / "b",
        num_labels=100,
        seed=1,
        test_acc=0.9,
        test_err=0.1,
        wall_time_s=300,
        resumed_time_s=900,  # resumed: 15 minutes of training before the last segment's 5
    )
    _write(
        tmp_path / "c",
        model="m1m2",
        num_labels=100,
        seed=0,
        test_acc=0.9,
        test_err=0.1,
        wall_time_s=600,
        vae={"train_time_s": 300.0, "trained_now": False},
    )
    rows = aggregate(collect_results([tmp_path]))
    by_model = {r["model"]: r for r in rows}
    assert by_model["m2"]["minutes_mean"] == pytest.approx(15.0)  # (10 + 20) / 2
    assert by_model["m1m2"]["minutes_mean"] == pytest.approx(15.0)  # 10 + 5 of pretraining
    table = to_markdown(rows, ["minutes"])
    assert "minutes per run" in table and "| 15 ± " in table


def test_minutes_of_a_run_resumed_before_they_were_recorded_come_from_its_curve(tmp_path):
    # Written before resumed_time_s: the last segment trained 10 of the curve's 30 minutes.
    record = dict(test_acc=0.9, test_err=0.1, resumed_from="last.ckpt", fit_time_s=600)
    _write(tmp_path / "a", num_labels=100, seed=0, wall_time_s=660, **record)
    curve = {"points": [{"epoch": 1, "train_min": 12.0}, {"epoch": 2, "train_min": 30.0}]}
    (tmp_path / "a" / "curve.json").write_text(json.dumps(curve))
    _write(tmp_path / "b", model="sdgm", num_labels=100, seed=0, wall_time_s=660, **record)
    by_model = {r["model"]: r for r in aggregate(collect_results([tmp_path]))}
    assert by_model["m2"]["minutes_mean"] == pytest.approx(11 + 20)
    assert by_model["sdgm"]["minutes_mean"] == pytest.approx(11)  # no curve: as recorded


def test_by_labels_lays_rows_out_as_table_1(tmp_path, capsys):
    # M2 on MNIST: 3 seeds at 100 labels, 1 seed at 600; supervised at 100 only (2 seeds).
    for seed, err in enumerate((0.10, 0.12, 0.14)):
        _write(
            tmp_path / f"m2_{seed}",
            dataset="mnist",
            num_labels=100,
            seed=seed,
            test_acc=1 - err,
            test_err=err,
        )
    _write(
        tmp_path / "m2_600", dataset="mnist", num_labels=600, seed=0, test_acc=0.95, test_err=0.05
    )
    for seed, err in enumerate((0.25, 0.27)):
        _write(
            tmp_path / f"nn_{seed}",
            dataset="mnist",
            model="supervised",
            num_labels=100,
            seed=seed,
            test_acc=1 - err,
            test_err=err,
        )
    rows = aggregate(collect_results([tmp_path]))
    assert by_labels_markdown(rows, paper=True).splitlines() == [
        "| data set | model | variant | 100 labels | 600 labels |",
        "| --- | --- | --- | ---: | ---: |",
        # mean ± std over 3 seeds; else the seed count; the paper's number in brackets.
        "| mnist | m2 | default | 12.00 ± 2.00 [11.97] | 5.00 (1 seed) [4.94] |",
        "| mnist | supervised | default | 26.00 ± 1.41 (2 seeds) [25.80] | |",
    ]
    # The CLI writes it beside the long table, and the leaderboard's has no variant column.
    from ssvae.report import main

    main([str(tmp_path), "--by-labels", "--out", str(tmp_path / "out")])
    assert (tmp_path / "out" / "results_by_labels.md").read_text() == by_labels_markdown(rows)
    main([str(tmp_path), "--leaderboard", "--by-labels", "--out", str(tmp_path / "out")])
    wide = (tmp_path / "out" / "leaderboard_by_labels.md").read_text()
    assert wide.splitlines()[2] == "| mnist | m2 | 12.00 ± 2.00 | 5.00 (1 seed) |"


def test_runs_on_other_label_draws_are_rows_of_their_own_not_re_runs(tmp_path):
    # experiment=sdgm_spread crosses data.seed (the labels) with seed (the initialisation): the
    # run with data.seed=1, seed=0 is not a re-run of the one with data.seed=0, seed=0, and each
    # label draw is a row whose spread over seeds says how much the initialisation matters.
    for data_seed in (0, 1):
        for seed in (0, 1):
            acc = 0.9 if data_seed == 1 else 0.7
            _write(
                tmp_path / f"d{data_seed}s{seed}",
                num_labels=50,
                seed=seed,
                test_acc=acc,
                test_err=1 - acc,
                variant=f"data.seed={data_seed}",
                config={"seed": seed, "data": {"num_labels": 50, "seed": data_seed}},
            )
    rows = aggregate(collect_results([tmp_path]))
    assert [(r["variant"], r["runs"], r["seeds"], r["acc_mean"]) for r in rows] == [
        ("data.seed=0", 2, "0 1", pytest.approx(0.7)),
        ("data.seed=1", 2, "0 1", pytest.approx(0.9)),
    ]
    # Laid out by seed, the 2x2 reads at a glance: rows are label draws, columns initialisations.
    table = by_seed_markdown(collect_results([tmp_path]))
    assert "| digits | m2 | data.seed=0 | 50 | 30.00 | 30.00 | 30.00 ± 0.00 |" in table
    assert "| digits | m2 | data.seed=1 | 50 | 10.00 | 10.00 | 10.00 ± 0.00 |" in table


def test_by_seed_leaves_a_missing_seed_blank_and_skips_failed_runs(tmp_path):
    _write(tmp_path / "a", num_labels=50, seed=0, test_acc=0.9, test_err=0.1)
    _write(tmp_path / "b", num_labels=50, seed=2, test_acc=0.7, test_err=0.3)
    _write(tmp_path / "c", num_labels=50, seed=1, status="failed", error="nan")
    _write(tmp_path / "d", num_labels=100, seed=1, test_acc=0.95, test_err=0.05)
    lines = by_seed_markdown(collect_results([tmp_path])).splitlines()
    assert (
        lines[0]
        == "| data set | model | variant | labels | seed 0 | seed 1 | seed 2 | mean ± std |"
    )
    assert lines[2] == "| digits | m2 | default | 50 | 10.00 | | 30.00 | 20.00 ± 14.14 |"
    assert lines[3] == "| digits | m2 | default | 100 | | 5.00 | | 5.00 ± 0.00 |"
    from ssvae.report import main

    main([str(tmp_path), "--by-seed", "--out", str(tmp_path / "out")])
    written = (tmp_path / "out" / "results_by_seed.md").read_text()
    assert written == by_seed_markdown(collect_results([tmp_path]))
