"""The run spec: defaults, storage round trip, and `/distill set key=value` parsing."""

from __future__ import annotations

import json

import pytest

from bot.core.errors import SpecError
from bot.spec.settings import EVAL_FILE, SETTABLE_KEYS, SETTINGS, RunSpec, choices_from_file


def test_defaults_take_the_configured_models_and_the_cookbook_rare_label_rule():
    spec = RunSpec.defaults(teacher="gpt-4.1", student="gpt-4.1-mini-2025-04-14", trainer="openai")
    assert (spec.teacher, spec.student, spec.trainer, spec.min_per_label, spec.epochs, spec.mode) == (
        "gpt-4.1", "gpt-4.1-mini-2025-04-14", "openai", 5, "auto", "live")


def test_a_new_run_trains_at_together_by_default_a_student_it_fine_tunes_and_serves():
    # OpenAI takes no new fine-tuning jobs after 2027-01-06 (issue 14): a spec that names no trainer lives on.
    assert (RunSpec().trainer, RunSpec().student) == ("together", "Qwen/Qwen3.5-9B")


def test_to_dict_is_json_and_from_dict_restores_the_same_spec():
    spec = RunSpec(label="variety", choices=("Rosé", "Riesling"), epochs=3, learning_rate_multiplier=1.8,
                   budget_micro_usd=2_500_000, template="{description}")
    stored = json.loads(json.dumps(spec.to_dict()))
    assert RunSpec.from_dict(stored) == spec
    assert RunSpec.from_dict({}) == RunSpec()


def test_from_dict_refuses_keys_it_does_not_know():
    with pytest.raises(SpecError, match="unknown keys: colour"):
        RunSpec.from_dict({"colour": "red"})


def test_every_settable_key_applies_to_its_field():
    spec = RunSpec().with_assignments({
        "label": "variety", "template": "Review: {description}. One of: {choices}", "system": "Be brief.",
        "choices": " Rosé , Riesling,, Gamay ", "min_per_label": "3", "train": "450", "eval": "50", "seed": "7",
        "teacher": "gpt-4.1", "student": "gpt-4.1-nano-2025-04-14", "trainer": "together", "epochs": "4",
        "lr": "0.5", "batch_size": "8", "training_data": "match_gold", "validation": "20", "budget": "2.50",
        "mode": "batch",
    })
    assert spec == RunSpec(
        label="variety", template="Review: {description}. One of: {choices}", system="Be brief.",
        choices=("Rosé", "Riesling", "Gamay"), min_per_label=3, train_size=450, eval_size=50, seed=7,
        teacher="gpt-4.1", student="gpt-4.1-nano-2025-04-14", trainer="together", epochs=4,
        learning_rate_multiplier=0.5, batch_size=8, training_data="match_gold", validation_size=20,
        budget_micro_usd=2_500_000, mode="batch",
    )
    # eval_file names a shared file, not a spec field (bot/runs/eval_files.py)
    assert set(SETTABLE_KEYS) == set(SETTINGS) | {EVAL_FILE} and all(SETTABLE_KEYS.values())


def test_none_auto_and_default_reset_optional_settings():
    spec = RunSpec(label="x", system="s", choices=("a", "b"), budget_micro_usd=1, epochs=3, template="{t}")
    reset = spec.with_assignments({"label": "none", "system": "none", "choices": "auto", "budget": "none",
                                   "epochs": "AUTO", "template": "default"})
    assert (reset.label, reset.system, reset.choices, reset.budget_micro_usd, reset.epochs, reset.template) == (
        None, None, None, None, "auto", None)


@pytest.mark.parametrize(
    ("pairs", "expected"),
    [
        ({"colour": "red"}, "unknown setting 'colour'; settable: label, template"),
        ({"train": "five"}, "train: expected a whole number from 10 to 10,000,000 (OpenAI fine-tuning needs 10 "
                            "examples), got 'five'"),
        ({"train": "5"}, "train: expected a whole number from 10 to 10,000,000 (OpenAI fine-tuning needs 10 "
                         "examples), got '5'"),
        ({"epochs": "51"}, "epochs: expected a whole number from 1 to 50, got '51'"),
        ({"batch_size": "0"}, "batch_size: expected a whole number from 1 to 256, got '0'"),
        ({"lr": "-1"}, "lr: expected a number above 0 and at most 100 such as 1.8 (or auto), got '-1'"),
        # Issue 19: absurd magnitudes are refused by name before any arithmetic.
        ({"budget": "1e999990"}, "budget: expected an amount in US dollars from 0 to 1,000,000 such as 5 or 2.50, "
                                 "got '1e999990'"),
        ({"seed": "9" * 30}, "seed: expected a whole number from 0 to 4,294,967,295, got '999"),
        ({"max_answer_tokens": "1e30"}, "max_answer_tokens: expected a whole number from 1 to 1,000,000, got '1e30'"),
        ({"eval": "1" * 5_000}, "eval: expected a whole number from 1 to 10,000,000, got '1111"),
        ({"lr": "1e308"}, "lr: expected a number above 0 and at most 100"),
        ({"mode": "fast"}, "mode: expected one of live, batch, got 'fast'"),
        ({"trainer": "hf"}, "trainer: expected one of together, openai"),
        ({"training_data": "some"}, "training_data: expected one of all, match_gold"),
        ({"budget": "lots"}, "budget: expected an amount in US dollars from 0 to 1,000,000 such as 5 or 2.50, got "
                             "'lots'"),
        ({"teacher": "gpt 4o"}, "teacher: expected a model name such as gpt-4o"),
        ({"template": "Review: {description"}, "template: The template has a '{' with no '}'"),
        ({"choices": "a,b,a"}, "choices: Label choices appear twice: a"),
        ({"validation": "495"}, "validation=495 is carved from train=500 and must leave at least 10"),
    ],
)
def test_bad_settings_name_the_key_and_what_it_accepts(pairs, expected):
    with pytest.raises(SpecError) as caught:
        RunSpec().with_assignments(pairs)
    assert expected in str(caught.value)


def test_every_bad_setting_is_reported_at_once():
    with pytest.raises(SpecError) as caught:
        RunSpec().with_assignments({"train": "x", "mode": "y", "colour": "z"})
    assert all(key in str(caught.value) for key in ("train:", "mode:", "'colour'"))


def test_choices_files_have_one_choice_per_line_and_with_choices_checks_them():
    assert choices_from_file("Rosé\n\n  Riesling  \r\nGamay\n") == ("Rosé", "Riesling", "Gamay")
    assert RunSpec().with_choices(["a", "b"]).choices == ("a", "b")
    with pytest.raises(SpecError, match="appear twice"):
        RunSpec().with_choices(["a", "a"])
