"""prepare(): spec checks against the columns, row filtering, deduplication and the stratified split."""

from __future__ import annotations

from collections import Counter

import pytest

from bot.core.errors import DatasetError, SpecError
from bot.data.splits import EVAL_FILE_ROW_OFFSET, EvalFile, input_hash, prepare
from bot.spec.settings import RunSpec

COLUMNS = ["text", "region", "category"]


def tickets(counts: dict[str, int]) -> dict[int, dict]:
    rows, index = {}, 0
    for category, count in counts.items():
        for i in range(count):
            rows[index] = {"text": f"{category} problem number {i}", "region": None, "category": category}
            index += 1
    return rows


SPEC = RunSpec(label="category", template="Ticket: {text} ({region}). One of: {choices}", train_size=60,
               eval_size=20)


def test_split_is_stratified_by_label_with_exact_sizes():
    prepared = prepare(SPEC, COLUMNS, tickets({"Billing": 60, "Access": 30, "Network": 10}))
    assert (len(prepared.train), len(prepared.eval)) == (60, 20)
    assert Counter(r.gold_label for r in prepared.eval) == {"Billing": 12, "Access": 6, "Network": 2}
    assert Counter(r.gold_label for r in prepared.train) == {"Billing": 36, "Access": 18, "Network": 6}
    assert prepared.choices == ("Billing", "Access", "Network")  # most frequent first
    assert prepared.template.literals[-1] == "). One of: Billing, Access, Network"


def test_train_and_eval_are_disjoint_by_normalized_input_and_overlap_is_reported():
    prepared = prepare(SPEC, COLUMNS, tickets({"Billing": 60, "Access": 40}))
    train = {r.input_hash for r in prepared.train}
    assert not train & {r.input_hash for r in prepared.eval} and prepared.overlap == 0
    row = prepared.eval[0]
    assert row.input_hash == input_hash(row.user_prompt)
    assert row.user_prompt == f"Ticket: {row.gold_label} problem number {row.user_prompt.split()[4]} (unknown). " \
                              "One of: Billing, Access"


def test_the_same_seed_gives_the_same_split_and_another_seed_another():
    rows = tickets({"Billing": 60, "Access": 40})
    first, again = prepare(SPEC, COLUMNS, rows), prepare(SPEC, COLUMNS, rows)
    other = prepare(RunSpec(**{**SPEC.to_dict(), "seed": 1, "choices": None}), COLUMNS, rows)
    assert [r.row_index for r in first.eval] == [r.row_index for r in again.eval]
    assert [r.row_index for r in first.eval] != [r.row_index for r in other.eval]


def test_rows_whose_prompt_differs_only_in_case_or_spacing_are_used_once():
    rows = tickets({"Billing": 40, "Access": 40})
    rows[100] = {**rows[0], "text": "  BILLING problem   number 0 "}
    rows[101] = dict(rows[1])
    prepared = prepare(SPEC, COLUMNS, rows)
    assert prepared.duplicates == 2
    used = [r.row_index for r in [*prepared.train, *prepared.eval]]
    assert 100 not in used and 101 not in used


def test_rare_labels_missing_labels_and_labels_outside_the_choices_are_left_out_and_counted():
    rows = tickets({"Billing": 50, "Access": 40, "Hardware": 3, "Printer": 4})
    rows[500] = {"text": "no label here", "region": "EU", "category": None}
    rows[501] = {"text": "blank label", "region": "EU", "category": "  "}
    prepared = prepare(SPEC, COLUMNS, rows)
    assert prepared.left_out == {"missing_label": 2, "rare_label": 7}
    assert prepared.rare_labels == {"Printer": 4, "Hardware": 3}
    assert prepared.choices == ("Billing", "Access")
    chosen = prepare(SPEC.with_choices(["Billing", "Hardware", "Access"]), COLUMNS, rows)
    assert chosen.left_out == {"missing_label": 2, "not_a_choice": 4, "rare_label": 3}
    assert chosen.choices == ("Billing", "Hardware", "Access")  # explicit choices are kept as given


def test_validation_rows_are_carved_out_of_train():
    spec = RunSpec(**{**SPEC.to_dict(), "validation_size": 10, "choices": None})
    prepared = prepare(spec, COLUMNS, tickets({"Billing": 60, "Access": 40}))
    assert (len(prepared.train), len(prepared.validation), len(prepared.eval)) == (50, 10, 20)
    assert not {r.row_index for r in prepared.validation} & {r.row_index for r in prepared.train}
    assert Counter(r.gold_label for r in prepared.validation) == {"Billing": 6, "Access": 4}


def test_a_small_dataset_shrinks_both_splits_in_proportion_and_says_so():
    prepared = prepare(SPEC, COLUMNS, tickets({"Billing": 30, "Access": 10}))
    assert (len(prepared.train), len(prepared.eval)) == (30, 10)
    assert "Only 40 usable rows: train 30 and eval 10 instead of 60 and 20." in prepared.notes


def test_without_a_label_every_row_is_used_against_explicit_choices():
    spec = RunSpec(template="{text}", choices=("Billing", "Access"), train_size=20, eval_size=5)
    prepared = prepare(spec, COLUMNS, tickets({"Billing": 15, "Access": 15}))
    assert (len(prepared.train), len(prepared.eval)) == (20, 5)
    assert all(r.gold_label is None for r in prepared.train) and prepared.left_out == {}


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (RunSpec(label="categroy"), "Label column 'categroy' not found. Columns: text, region, category. "
                                    "Did you mean 'category'?"),
        (RunSpec(label="category", template="{txt} in {regoin} or {nothing_close}"),
         "placeholders that are not columns: {txt} — 'txt' not found. Columns: text, region, category. "
         "Did you mean 'text'?; {regoin} — 'regoin' not found"),
        (RunSpec(label="category", template="{text} is {category}"), "The template shows {category}, the label"),
        (RunSpec(template="{text}"), "Without a label column the bot cannot infer the choices"),
    ],
    ids=["label", "placeholders", "label-in-template", "no-label-no-choices"],
)
def test_spec_problems_list_the_columns_and_the_closest_name(spec, expected):
    with pytest.raises(SpecError) as caught:
        prepare(spec, COLUMNS, tickets({"Billing": 30, "Access": 30}))
    assert expected in str(caught.value)


def test_labels_with_too_few_rows_are_listed_when_fewer_than_two_labels_remain():
    with pytest.raises(SpecError) as caught:
        prepare(SPEC, COLUMNS, tickets({"Billing": 40, "Access": 3, "Network": 2}))
    assert "only 'Billing' has 5 or more rows" in str(caught.value)
    assert "Labels with too few rows: Access (3), Network (2). Lower min_per_label" in str(caught.value)


def test_no_rows_left_after_filtering_says_why():
    rows = {i: {"text": f"t{i}", "region": None, "category": "Other" if i % 2 else None} for i in range(10)}
    with pytest.raises(DatasetError) as caught:
        prepare(SPEC.with_choices(["Billing", "Access"]), COLUMNS, rows)
    message = str(caught.value)
    assert message.startswith("No rows left after filtering the 10 rows: 5 have no value in 'category'; "
                              "5 have a label that is not one of the choices.")


def test_too_few_rows_for_a_training_file_is_refused():
    with pytest.raises(SpecError, match="not enough for 10 training rows"):
        prepare(SPEC, COLUMNS, tickets({"Billing": 5, "Access": 5}))


def test_a_separate_eval_file_is_the_eval_split_and_its_inputs_leave_train():
    data = tickets({"Billing": 60, "Access": 40})
    held = {0: {"text": "BILLING problem number 3", "region": None, "category": "Billing"},  # in the data, folded
            1: {"text": "a new access problem", "region": "EU", "category": "Access"},
            2: {"text": "a new access problem", "region": "EU", "category": "Access"},  # twice in the file
            3: {"text": "a printer", "region": None, "category": "Printers"}}  # not a choice of the data
    prepared = prepare(SPEC, COLUMNS, data, EvalFile("test.csv", COLUMNS, held))
    assert [r.row_index for r in prepared.eval] == [EVAL_FILE_ROW_OFFSET, EVAL_FILE_ROW_OFFSET + 1]
    assert [r.gold_label for r in prepared.eval] == ["Billing", "Access"]
    assert len(prepared.train) == 60 and prepared.overlap == 0
    assert not {r.input_hash for r in prepared.train} & {r.input_hash for r in prepared.eval}
    assert prepared.left_out == {"in_eval_file": 1, "not_a_choice_eval": 1, "eval_file_duplicate_eval": 1}
    assert any("The eval split is the 2 rows of test.csv" in note for note in prepared.notes)


def test_an_eval_file_without_the_runs_columns_is_refused_naming_them():
    with pytest.raises(SpecError, match=r"test\.csv lacks the column.*'region' not found.*'category' not found"):
        prepare(SPEC, COLUMNS, tickets({"Billing": 60, "Access": 40}),
                EvalFile("test.csv", ["text"], {0: {"text": "x"}}))
