"""Templates, the messages sent, the structured-output schema and the answers."""

from __future__ import annotations

import json

import pytest

from bot.core.errors import SpecError
from bot.prompts.templates import (
    MISSING,
    Template,
    answer_json,
    default_template,
    parse_answer,
    render_template,
    response_format,
    validate_choices,
)
from bot.spec.messages import build_messages, training_example
from bot.spec.settings import RunSpec


def test_placeholders_take_the_row_and_choices_take_the_joined_labels():
    row = {"winery": "Trimbach", "price": "24.0", "region_1": None}
    text = render_template("{winery} ({price}) from {region_1}. Pick one of: {choices}.", row, ["Riesling", "Rosé"])
    assert text == f"Trimbach (24.0) from {MISSING}. Pick one of: Riesling, Rosé."


@pytest.mark.parametrize("missing", [None, "", float("nan")])
def test_missing_values_render_as_an_explicit_word_never_nan(missing):
    assert render_template("Price: {price}.", {"price": missing}, []) == "Price: unknown."


def test_double_braces_are_literal_and_spaces_inside_a_placeholder_are_ignored():
    assert render_template('{{"text": "{ text }"}}', {"text": "hi"}, []) == '{"text": "hi"}'


def test_parse_splits_literals_and_fields_and_binding_choices_leaves_only_columns():
    template = Template.parse("A {x} B {choices} C {y}")
    assert template.literals == ("A ", " B ", " C ", "") and template.fields == ("x", "choices", "y")
    assert template.columns == ("x", "y")
    bound = template.bind_choices(["p", "q"])
    assert bound.literals == ("A ", " B p, q C ", "") and bound.fields == ("x", "y")
    assert bound.render(["1", "2"]) == "A 1 B p, q C 2"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Review: {description", "a '{' with no '}' on line 1"),
        ("Line one\nReview: description}", "a '}' with no '{' on line 2"),
        ("Review: {} ", "an empty placeholder {}"),
    ],
)
def test_unbalanced_braces_are_refused_with_the_line_and_the_escape(text, expected):
    with pytest.raises(SpecError) as caught:
        Template.parse(text)
    assert expected in str(caught.value) and "write {{ or }} for a literal brace" in str(caught.value)


def test_the_default_template_shows_every_column_but_the_label_and_unnamed_index():
    template = default_template(["Unnamed: 0", "description", "points", "variety"], "variety")
    assert template == ("Which variety fits this example?\ndescription: {description}\npoints: {points}\n\n"
                        "Answer with one of: {choices}.")


def test_messages_are_the_system_prompt_then_the_row_and_a_training_example_adds_the_answer():
    spec = RunSpec(system="You are a sommelier.")
    assert build_messages(spec, "Which grape?") == [
        {"role": "system", "content": "You are a sommelier."}, {"role": "user", "content": "Which grape?"}]
    assert build_messages(RunSpec(), "Which grape?") == [{"role": "user", "content": "Which grape?"}]
    assert training_example(spec, "Which grape?", answer_json("Rosé"))[-1] == {"role": "assistant",
                                                                               "content": '{"label":"Rosé"}'}


def test_response_format_is_exactly_the_strict_enum_schema():
    assert response_format(["Billing", "Access"]) == {
        "type": "json_schema",
        "json_schema": {
            "name": "classification",
            "strict": True,
            "schema": {
                "type": "object",
                "properties": {"label": {"type": "string", "enum": ["Billing", "Access"]}},
                "required": ["label"],
                "additionalProperties": False,
            },
        },
    }


def test_answers_are_compact_json_and_only_a_listed_label_parses():
    assert answer_json("Gewürztraminer") == '{"label":"Gewürztraminer"}'
    choices = {"Riesling", "Rosé"}
    assert parse_answer('{"label":"Rosé"}', choices) == "Rosé"
    assert parse_answer(' {"label": "Riesling"} ', choices) == "Riesling"
    for bad in ['{"label":"Merlot"}', "Riesling", '{"variety":"Riesling"}', '["Riesling"]', "", None, '{"label":1}']:
        assert parse_answer(bad, choices) is None, bad


@pytest.mark.parametrize(
    ("choices", "expected"),
    [
        ([], "There are no label choices"),
        (["a", " "], "A label choice is empty"),
        (["a", "b", "a"], "Label choices appear twice: a"),
        ([f"label {i}" for i in range(1001)], "1001 label choices is more than the 1000"),
        ([f"{i:04d}" + "x" * 60 for i in range(251)], "allow 15,000 when there are more than 250"),
        (["x" * 60_001, "y" * 60_000], "allow 120,000 in one schema"),
    ],
    ids=["none", "empty", "duplicate", "over-1000", "over-15000-chars", "over-120000-chars"],
)
def test_choices_beyond_openai_structured_output_limits_are_refused(choices, expected):
    with pytest.raises(SpecError, match=expected):
        validate_choices(choices)
    with pytest.raises(SpecError):
        response_format(choices)


def test_choices_at_the_limits_are_accepted():
    validate_choices([f"{i:04d}" for i in range(1000)])
    validate_choices([f"{i:03d}" + "x" * 56 for i in range(250)])  # 250 values: the 15,000 rule does not apply
    assert json.dumps(response_format(["a", "b"]))
