"""Reasoning teachers: the effort sent, the answer's token budget, temperature, and expected vs most in quotes."""

from __future__ import annotations

import re

import pytest

from bot.core.errors import SpecError
from bot.costs.quotes import count_chat_tokens, estimate, longest_answer_tokens
from bot.data.splits import prepare
from bot.prices.reasoning import (
    ANSWER_SLACK_TOKENS,
    REASONING_ALLOWANCE_TOKENS,
    ReasoningExpectation,
    answer_budget,
    cut_off_error,
)
from bot.prices.table import PriceTable
from bot.spec.messages import build_messages
from bot.spec.settings import RunSpec
from tests.costs.test_quotes import COLUMNS, ROWS

SPEC = RunSpec(label="category", system="Sort IT tickets.", template="{text}\nOne of: {choices}",
               train_size=60, eval_size=30, validation_size=10, trainer="openai", student="gpt-4o-mini-2024-07-18")


@pytest.fixture(scope="module")
def prices() -> PriceTable:
    return PriceTable.load()


def test_a_reasoning_teacher_is_asked_at_its_cheapest_effort_within_a_budget_and_without_temperature(prices):
    budget = answer_budget("gpt-6.2-sol", prices.get("gpt-6.2-sol"), answer_tokens=7)
    assert budget.effort == "low"
    assert budget.max_completion_tokens == 7 + ANSWER_SLACK_TOKENS + REASONING_ALLOWANCE_TOKENS["low"]
    assert budget.request_options() == {"max_completion_tokens": budget.max_completion_tokens,
                                        "reasoning_effort": "low"}
    # A model that takes effort none is asked at none, where it also takes temperature.
    terra = answer_budget("gpt-6.1-terra", prices.get("gpt-6.1-terra"), answer_tokens=7)
    assert terra.request_options() == {"max_completion_tokens": 7 + ANSWER_SLACK_TOKENS, "reasoning_effort": "none",
                                       "temperature": 0}
    thinking = answer_budget("gpt-6.1-terra", prices.get("gpt-6.1-terra"), answer_tokens=7, effort="high")
    assert "temperature" not in thinking.request_options() and thinking.request_options()["reasoning_effort"] == "high"
    # A model that does not reason gets no effort, and temperature 0.
    assert answer_budget("gpt-4o", prices.get("gpt-4o"), answer_tokens=7).request_options() == {
        "max_completion_tokens": 7 + ANSWER_SLACK_TOKENS, "temperature": 0}


def test_max_answer_tokens_replaces_the_total_within_what_the_model_can_write(prices):
    sol = prices.get("gpt-6.2-sol")
    assert answer_budget("gpt-6.2-sol", sol, answer_tokens=7, max_answer_tokens=900).max_completion_tokens == 900
    with pytest.raises(SpecError, match=re.escape("below the longest answer gpt-6.2-sol may have to write (7 tokens)")):
        answer_budget("gpt-6.2-sol", sol, answer_tokens=7, max_answer_tokens=5)
    with pytest.raises(SpecError, match=re.escape("over gpt-6.2-sol's most output tokens per request (128,000)")):
        answer_budget("gpt-6.2-sol", sol, answer_tokens=7, max_answer_tokens=200_000)
    # The largest allowance is kept within the model's max output.
    assert answer_budget("gpt-6.2-sol", sol, answer_tokens=7, effort="max").max_completion_tokens <= 128_000


def test_an_effort_the_model_does_not_take_is_refused_naming_those_it_takes(prices):
    with pytest.raises(SpecError) as refused:
        RunSpec().with_assignments({"teacher_effort": "none"}, prices)
    assert str(refused.value) == ("teacher_effort=none does not suit the teacher: gpt-6.2-sol takes low, medium, high, "
                                  "xhigh, max (default here: low).")
    not_reasoning = "gpt-4o does not reason, so it takes no effort (teacher_effort=default)"
    with pytest.raises(SpecError, match=re.escape(not_reasoning)):
        RunSpec().with_assignments({"teacher": "gpt-4o", "teacher_effort": "low"}, prices)
    with pytest.raises(SpecError, match="expected default or one of none, minimal, low, medium, high, xhigh, max"):
        RunSpec().with_assignments({"teacher_effort": "turbo"}, prices)
    spec = RunSpec().with_assignments({"teacher": "gpt-6.1-terra", "teacher_effort": "medium",
                                       "max_answer_tokens": "3000"}, prices)
    assert (spec.teacher_effort, spec.max_answer_tokens) == ("medium", 3000)
    assert spec.with_assignments({"teacher_effort": "default", "max_answer_tokens": "default"}, prices) == \
        RunSpec(teacher="gpt-6.1-terra")


def test_a_cut_off_answer_names_the_fix():
    assert cut_off_error(4_112, "low", 4_112) == (
        "cut off: the model used all 4,112 completion tokens (4,112 of them reasoning at effort low) before it "
        "answered; raise max_answer_tokens (now 4,112) or lower teacher_effort (now low).")
    assert cut_off_error(23, None, 0) == ("cut off: the model used all 23 completion tokens before it answered; "
                                          "raise max_answer_tokens (now 23).")


def test_before_a_pilot_the_quote_expects_the_answers_only_and_bounds_the_reasoning(prices):
    prepared = prepare(SPEC, COLUMNS, ROWS)
    quote = estimate(prepared, SPEC, prices)
    teacher, student = quote.stage("collect").lines
    assert (teacher.model, teacher.effort, teacher.reasoning) == ("gpt-6.2-sol", "low", "not measured")
    assert teacher.reasoning_tokens == 0
    rows = [*prepared.train, *prepared.validation, *prepared.eval]
    sol = prices.get("gpt-6.2-sol")
    budget = answer_budget("gpt-6.2-sol", sol, answer_tokens=longest_answer_tokens(prepared.choices, "gpt-6.2-sol"))
    assert teacher.max_completion_tokens == budget.max_completion_tokens * len(rows)
    assert teacher.max_cost_micro_usd == sum(
        sol.cost_micro_usd(count_chat_tokens(build_messages(SPEC, r.user_prompt), "gpt-6.2-sol"),
                           budget.max_completion_tokens) for r in rows)
    assert teacher.max_cost_micro_usd > 20 * teacher.cost_micro_usd
    assert student.reasoning == "none" and student.max_cost_micro_usd >= student.cost_micro_usd
    [note] = [n for n in quote.notes if n.startswith("gpt-6.2-sol reasons")]
    assert "reasoning is not measured yet, so the expected cost counts the answers only" in note
    assert f"{REASONING_ALLOWANCE_TOKENS['low']:,} reasoning tokens" in note
    assert quote.max_amount_micro_usd("collect") == teacher.max_cost_micro_usd + student.max_cost_micro_usd


def test_after_a_pilot_the_quote_expects_the_measured_reasoning(prices):
    prepared = prepare(SPEC, COLUMNS, ROWS)
    before = estimate(prepared, SPEC, prices)
    pilot = ReasoningExpectation("gpt-6.2-sol", "low", rows=20, mean_tokens=312.4, p90_tokens=540, max_tokens=610)
    after = estimate(prepared, SPEC, prices, expected=[pilot])
    was, teacher = before.stage("collect").lines[0], after.stage("collect").lines[0]
    assert teacher.reasoning == "measured" and teacher.reasoning_tokens == round(312.4 * 90)
    assert teacher.completion_tokens == was.completion_tokens + teacher.reasoning_tokens
    assert teacher.cost_micro_usd > was.cost_micro_usd and teacher.max_cost_micro_usd == was.max_cost_micro_usd
    assert after.quote_hash != before.quote_hash
    assert any("expected from a pilot of 20 rows: 312 reasoning tokens per answer (mean; p90 540)" in n
               for n in after.notes)
    # A pilot of another effort says nothing about this one.
    other = ReasoningExpectation("gpt-6.2-sol", "high", rows=20, mean_tokens=3000, p90_tokens=5000, max_tokens=6000)
    assert estimate(prepared, SPEC, prices, expected=[other]).stage("collect").lines[0].reasoning == "not measured"
