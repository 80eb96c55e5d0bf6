"""conf/recipe/: naming a model and a data set gives the model's best measured recipe there,
the named experiments that measured it are that recipe, and older recipes stay reachable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from ssvae.runs import fingerprint

ROOT = Path(__file__).resolve().parent.parent

# Each MNIST recipe and the sweep whose committed rows measured it (the sweep adds only the
# per-epoch learning curve, seeds and plumbing).
RECIPE_SWEEPS = {
    "m2": "table1_m2",
    "m1m2": "m1m2_100",
    "sdgm": "sdgm_100",
    "vat": "vat_100",
    "ladder": "ladder_100",
    "mean_teacher": "mean_teacher_100",
    "m2_vat": "m2_vat_bn_100",
    "m2_ladder": "m2_ladder_100",
}


@pytest.mark.parametrize("model", sorted(RECIPE_SWEEPS))
def test_model_and_data_set_alone_give_the_sweeps_recipe(compose_cfg, model):
    plain = compose_cfg(
        "data=mnist", f"model={model}", "seed=1", "data.num_labels=100", "callbacks=learning_curve"
    )
    sweep = compose_cfg(f"experiment={RECIPE_SWEEPS[model]}", "seed=1", "data.num_labels=100")
    assert fingerprint(plain) == fingerprint(sweep)
    # And recipe=none is the model's plain config, which differs.
    older = compose_cfg(
        "data=mnist",
        f"model={model}",
        "seed=1",
        "data.num_labels=100",
        "callbacks=learning_curve",
        "recipe=none",
    )
    assert fingerprint(older) != fingerprint(plain)


def test_m2_on_mnist_is_the_measured_recipe_and_recipe_none_the_earlier_default(compose_cfg):
    best = compose_cfg("data=mnist", "model=m2")
    assert best.model.hidden_dims == [500, 500] and best.model.activation == "relu"
    assert best.model.optimizer.lr == 1e-3 and best.data.unlabeled_batch_size == 100
    assert best.model.scheduler._target_.endswith("StepLR")
    assert best.trainer.gradient_clip_val == 5
    earlier = compose_cfg("data=mnist", "model=m2", "recipe=none")
    assert earlier.model.hidden_dims == [500] and earlier.model.activation == "softplus"
    assert earlier.model.scheduler._target_.endswith("ConstantLR")
    assert earlier.data.unlabeled_batch_size == 500


def test_a_schedule_chosen_on_the_command_line_wins_over_the_recipes(compose_cfg):
    vat = compose_cfg("data=mnist", "model=vat")
    assert OmegaConf.to_container(vat.model.scheduler, resolve=True) == {
        "_target_": "torch.optim.lr_scheduler.CosineAnnealingLR",
        "_partial_": True,
        "T_max": 170,
        "eta_min": 0.0,
    }
    step = compose_cfg("data=mnist", "model=vat", "model/scheduler=step")
    assert step.model.scheduler._target_.endswith("StepLR")
    assert set(step.model.scheduler) == {"_target_", "_partial_", "step_size", "gamma"}
    # The other recipe values stay.
    assert step.data.unlabeled_batch_size == 250 and step.trainer.max_epochs == 170
    # A schedule with a recipe of its own here takes that recipe's values.
    exponential = compose_cfg("data=mnist", "model=vat", "model/scheduler=exponential")
    assert exponential.model.scheduler.gamma == 0.9587
    # And an override of a recipe's value wins too.
    assert compose_cfg("data=mnist", "model=vat", "trainer.max_epochs=3").trainer.max_epochs == 3


def test_data_sets_without_a_recipe_keep_the_models_config(compose_cfg):
    for model in ("m2", "vat", "ladder", "sdgm"):
        on_digits = compose_cfg(f"model={model}")
        assert fingerprint(on_digits) == fingerprint(compose_cfg(f"model={model}", "recipe=none"))


def test_every_recipe_file_names_a_data_set_and_model_that_exist():
    conf = ROOT / "conf"
    data_sets = {p.stem for p in (conf / "data").glob("*.yaml")}
    models = {p.stem for p in (conf / "model").glob("*.yaml")}
    for path in (conf / "recipe").glob("*.yaml"):
        if path.stem == "none":
            continue
        data, _, model = path.stem.partition("_")
        assert data in data_sets and model in models, path.name


@pytest.mark.parametrize(
    "run, now",
    [
        ("baselines_100/experiment=ladder_100,seed=0", None),
        # The recipe is the cosine that this run chose on the command line.
        (
            "vat_100_cosine/experiment=vat_100,model.scheduler=cosine,seed=0,trainer.max_epochs=170",
            ["experiment=vat_100", "seed=0"],
        ),
        # The authors' schedule it replaced keeps its own experiment.
        ("vat_100_2018/experiment=vat_100,seed=0", ["experiment=vat_100_2018", "seed=0"]),
        # The M2+VAT and M2+Ladder sweeps, whose settings became recipes after they ran.
        ("m2_vat_bn_100/experiment=m2_vat_bn_100,model.bound=True,seed=0", None),
        ("m2_vat_bn_100/experiment=m2_vat_bn_100,model.bound=False,seed=2", None),
        ("m2_ladder_100/experiment=m2_ladder_100,model.bound=True,seed=0", None),
    ],
)
def test_committed_runs_of_the_recipe_sweeps_keep_their_digests(compose_cfg, run, now, cpu_bf16):
    # An unfinished sweep resumes only if its jobs compose to the digests they started with; a
    # superseded recipe's run says which command now composes to what it ran.
    record = json.loads((ROOT / "docs" / "runs" / run / "result.json").read_text())
    cpu_bf16(record["config"]["trainer"]["precision"] == "bf16-mixed")  # as where it ran
    overrides = now or [o for o in record["overrides"] if not o.startswith("data.root")]
    assert fingerprint(compose_cfg(*overrides)) == record["fingerprint"]


def test_m2_vat_recipe_is_the_batch_normalised_one_and_the_first_keeps_its_experiment(compose_cfg):
    best = compose_cfg("data=mnist", "model=m2_vat")
    assert best.model.classifier_dims == [1200, 600, 300, 150] and best.model.epsilon == 5.0
    assert best.model.scheduler._target_.endswith("CosineAnnealingLR")
    assert best.data.unlabeled_batch_size == 250 and not best.model.binarize
    first = compose_cfg("experiment=m2_vat_100")
    assert first.model.classifier_dims is None and first.model.epsilon == 0.5
    assert first.model.scheduler._target_.endswith("StepLR")
    assert first.trainer.max_time == "00:02:10:00" and first.trainer.gradient_clip_val == 5
    ladder = compose_cfg("data=mnist", "model=m2_ladder")
    assert ladder.model.scheduler._target_.endswith("linear_decay")
    assert ladder.trainer.max_epochs == 100 and ladder.model.hidden_dims == [500, 500]
