"""Prices, the chat token formula, the staged quote, and the wine cookbook's own figure."""

from __future__ import annotations

import dataclasses
import json
from decimal import Decimal
from pathlib import Path

import pytest
from openai import AsyncOpenAI

from bot.core.errors import PriceError
from bot.core.money import format_usd
from bot.costs.quotes import (
    answer_tokens,
    count_chat_tokens,
    count_training_file_tokens,
    default_epochs,
    estimate,
    user_prompt_tokens,
)
from bot.data.datasets import load_csv
from bot.data.splits import prepare
from bot.prices.table import PriceTable
from bot.prompts.encodings import get_encoding
from bot.prompts.templates import answer_json, response_format
from bot.spec.messages import build_messages, training_example
from bot.spec.settings import RunSpec
from bot.trainers import billing_for

TEMPLATE = Path(__file__).parents[1] / "fixtures" / "cookbook_wine_template.txt"
COLUMNS = ["text", "category"]
TICKETS = {"Billing": "facture débitée deux fois 💳", "Network": "le VPN coupe chaque heure",
           "Access": "compte bloqué 🔒"}
ROWS = {i: {"text": f"Ticket {i}: {TICKETS[label]}", "category": label}
        for i, label in enumerate(["Billing", "Network", "Access"] * 40)}
# OpenAI's trainer and student (new runs default to Together, tested at the end of this file).
OPENAI = {"trainer": "openai", "student": "gpt-4o-mini-2024-07-18"}
SPEC = RunSpec(label="category", system="Sort IT tickets.", template="{text}\nOne of: {choices}",
               train_size=60, eval_size=30, validation_size=10, teacher="gpt-4o", **OPENAI)


@pytest.fixture(scope="module")
def prices() -> PriceTable:
    return PriceTable.load()


def tokens(text: str) -> int:
    return len(get_encoding("o200k_base").encode_ordinary(text))


# --- prices -------------------------------------------------------------------------------------------------

def test_every_bundled_price_is_dated_and_sourced_and_the_fine_tuning_prices_match_openai(prices):
    assert all(p.source.startswith("https://") and p.as_of.year >= 2024 for p in prices.prices.values())
    mini = prices.get("gpt-4o-mini-2024-07-18")
    assert (mini.input_usd_per_1m, mini.output_usd_per_1m, mini.training_usd_per_1m) == (
        Decimal("0.15"), Decimal("0.60"), Decimal("3.00"))
    tuned = prices.get("ft:gpt-4o-mini-2024-07-18:acme:wine:AbC123xy")
    assert (tuned.model, tuned.input_usd_per_1m, tuned.output_usd_per_1m) == (
        "ft:gpt-4o-mini-2024-07-18", Decimal("0.30"), Decimal("1.20"))
    big = prices.get("ft:gpt-4o-2024-08-06:acme::x")
    assert (big.input_usd_per_1m, big.output_usd_per_1m, prices.get("gpt-4o-2024-08-06").training_usd_per_1m) == (
        Decimal("3.75"), Decimal("15.00"), Decimal("25.00"))


def test_costs_are_integer_micro_dollars_rounded_up(prices):
    gpt4o = prices.get("gpt-4o")
    assert gpt4o.cost_micro_usd(245_439, 0) == 613_598  # $613,597.5 micro: up, never down
    assert prices.get("gpt-4o-mini").cost_micro_usd(1, 0) == 1  # 0.15 micro-dollars
    assert gpt4o.cost_micro_usd(1_000_000, 1_000_000) == 12_500_000
    assert gpt4o.cost_micro_usd(1_000_000, 1_000_000, batch=True) == 6_250_000
    # OpenAI's batch table for fine-tuned gpt-4o is not a flat half: explicit prices win.
    assert prices.get("ft:gpt-4o-2024-08-06").cost_micro_usd(1_000_000, 0, batch=True) == 2_225_000
    assert prices.get("gpt-4o-mini-2024-07-18").training_cost_micro_usd(1_000_001) == 3_000_003


def test_an_unknown_model_says_how_to_add_its_price(prices):
    with pytest.raises(PriceError) as caught:
        prices.get("ft:gpt-4o-mini:acme::abc")  # the alias has no fine-tuned price, only the snapshot does
    message = str(caught.value)
    assert "No price for model 'ft:gpt-4o-mini'" in message and "set DISTILL_PRICES" in message
    assert '{"models": {"ft:gpt-4o-mini": {"input": "2.50"' in message


def test_a_model_without_a_training_price_cannot_be_the_student(prices):
    with pytest.raises(PriceError, match="no training price for gpt-4o, so it cannot be the student"):
        prices.get("gpt-4o").training_cost_micro_usd(100)


def test_an_override_file_changes_and_adds_entries(tmp_path):
    override = tmp_path / "prices.json"
    override.write_text(json.dumps({"models": {
        "gpt-4o": {"input": "2.00", "output": "8", "as_of": "2027-01-01", "source": "https://example.com/p"},
        "llama-3.1-8b": {"input": "0.18", "output": "0.18", "training": "0.48", "batch_discount": "0",
                         "as_of": "2026-10-01", "source": "https://together.ai/pricing"},
    }}))
    table = PriceTable.load(override)
    assert table.get("gpt-4o").input_usd_per_1m == Decimal("2.00")
    assert table.get("gpt-4o").cost_micro_usd(1_000_000, 0, batch=True) == 2_000_000  # no batch discount given
    assert table.get("llama-3.1-8b").training_cost_micro_usd(1_000_000) == 480_000
    assert table.get("gpt-4o-mini").input_usd_per_1m == Decimal("0.15")  # bundled entries stay


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "DISTILL_PRICES points to"),
        ("not json", "is not a price table"),
        ('{"models": {"m": {"input": "-1", "output": "1", "as_of": "2026-01-01", "source": "https://x"}}}',
         "model 'm' needs \"input\" as a number >= 0"),
        ('{"models": {"m": {"input": "1", "output": "1", "as_of": "soon", "source": "https://x"}}}',
         "model 'm' needs \"as_of\" as a date"),
        ('{"models": {"m": {"input": "1", "output": "1", "as_of": "2026-01-01"}}}', "model 'm' needs \"source\""),
    ],
    ids=["missing-file", "not-json", "negative", "no-date", "no-source"],
)
def test_a_broken_override_file_is_named_with_its_problem(tmp_path, content, expected):
    path = tmp_path / "prices.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(PriceError, match=expected):
        PriceTable.load(path)


# --- token formulas -----------------------------------------------------------------------------------------

def test_chat_tokens_follow_the_cookbook_formula():
    messages = [{"role": "system", "content": "You are a sommelier."},
                {"role": "user", "content": "Which grape?", "name": "alice"}]
    expected = 3 + (3 + tokens("system") + tokens("You are a sommelier.")) + (
        3 + tokens("user") + tokens("Which grape?") + tokens("alice") + 1)
    assert count_chat_tokens(messages, "gpt-4o") == expected
    assert answer_tokens("Gewürztraminer", "gpt-4o") == tokens('{"label":"Gewürztraminer"}')


def test_training_file_tokens_are_the_sum_over_examples():
    examples = [training_example(SPEC, f"ticket {i}", answer_json("Billing")) for i in range(5)]
    assert count_training_file_tokens(examples, "gpt-4o-mini-2024-07-18") == sum(
        count_chat_tokens(e, "gpt-4o-mini-2024-07-18") for e in examples)


@pytest.mark.parametrize(("examples", "epochs"), [(5, 20), (10, 10), (40, 3), (8_000, 3), (10_000, 2), (30_000, 1)])
def test_auto_epochs_follow_openais_rule(examples, epochs):
    assert default_epochs(examples) == epochs


def test_usd_is_shown_in_cents_or_four_places_under_a_cent():
    assert [format_usd(m) for m in (613_598, 4_200, 0, 12_345_678)] == ["$0.61", "$0.0042", "$0.00", "$12.35"]


# --- the quote ----------------------------------------------------------------------------------------------

def test_every_stage_counts_exactly_what_its_requests_will_send(prices):
    prepared = prepare(SPEC, COLUMNS, ROWS)
    quote = estimate(prepared, SPEC, prices)
    teacher, student = quote.stage("collect").lines
    labelled = [*prepared.train, *prepared.validation, *prepared.eval]

    def prompt_total(rows, model):
        return sum(count_chat_tokens(build_messages(SPEC, r.user_prompt), model) for r in rows)

    def answers(rows, model):
        return sum(answer_tokens(r.gold_label, model) for r in rows)

    assert (teacher.model, teacher.rows) == ("gpt-4o", 90)  # train 50 + validation 10 + eval 30
    assert teacher.prompt_tokens == prompt_total(labelled, "gpt-4o")
    assert teacher.completion_tokens == answers(labelled, "gpt-4o")
    assert teacher.cost_micro_usd == prices.get("gpt-4o").cost_micro_usd(teacher.prompt_tokens,
                                                                         teacher.completion_tokens)
    assert teacher.batch_cost_micro_usd == prices.get("gpt-4o").cost_micro_usd(
        teacher.prompt_tokens, teacher.completion_tokens, batch=True)
    assert (student.model, student.rows) == ("gpt-4o-mini-2024-07-18", 30)
    assert student.prompt_tokens == prompt_total(prepared.eval, student.model)
    train = quote.stage("train")
    file_tokens = count_training_file_tokens(
        [training_example(SPEC, r.user_prompt, answer_json(r.gold_label)) for r in prepared.train], SPEC.student)
    assert (train.training_file_tokens, train.epochs, train.epochs_range) == (file_tokens, 3, (1, 25))
    assert train.lines[0].trained_tokens == 3 * file_tokens
    assert train.cost_micro_usd == train.batch_cost_micro_usd == prices.get(SPEC.student).training_cost_micro_usd(
        3 * file_tokens)
    assert train.upper_cost_micro_usd == prices.get(SPEC.student).training_cost_micro_usd(25 * file_tokens)
    (distilled,) = quote.stage("evaluate").lines
    assert (distilled.model, distilled.rows) == ("ft:gpt-4o-mini-2024-07-18", 30)
    assert distilled.cost_micro_usd == prices.get(distilled.model).cost_micro_usd(
        distilled.prompt_tokens, distilled.completion_tokens)
    totals = quote.to_dict()["total"]
    assert totals["cost_micro_usd"] == teacher.cost_micro_usd + student.cost_micro_usd + train.cost_micro_usd + \
        distilled.cost_micro_usd
    assert quote.rows["train"] == 50 and quote.rows["validation"] == 10 and json.dumps(quote.to_dict())


def test_fixed_epochs_batch_mode_and_a_teacher_with_another_tokenizer(tmp_path):
    override = tmp_path / "prices.json"
    override.write_text(json.dumps({"models": {"gpt-4-turbo": {
        "input": "10", "output": "30", "as_of": "2026-11-22", "source": "https://developers.openai.com/api/docs/pricing",
        "batch_discount": "0.5"}}}))
    spec = RunSpec(**{**SPEC.to_dict(), "teacher": "gpt-4-turbo", "epochs": 4, "mode": "batch", "choices": None})
    prepared = prepare(spec, COLUMNS, ROWS)
    quote = estimate(prepared, spec, PriceTable.load(override))
    teacher = quote.stage("collect").lines[0]
    rows = [*prepared.train, *prepared.validation, *prepared.eval]
    cl100k = sum(count_chat_tokens(build_messages(spec, r.user_prompt), "gpt-4-turbo") for r in rows)
    o200k = sum(count_chat_tokens(build_messages(spec, r.user_prompt), "gpt-4o") for r in rows)
    assert teacher.prompt_tokens == cl100k != o200k
    train = quote.stage("train")
    assert (train.epochs, train.epochs_range, train.upper_cost_micro_usd) == (4, None, train.cost_micro_usd)
    assert quote.amount_micro_usd("collect") == quote.stage("collect").batch_cost_micro_usd
    assert quote.amount_micro_usd() == quote.total("batch_cost_micro_usd")


def test_without_a_label_completions_assume_the_longest_choice(prices):
    spec = RunSpec(template="{text}", choices=("Billing", "Network", "Hardware and peripherals"), train_size=60,
                   eval_size=30, teacher="gpt-4o", **OPENAI)
    quote = estimate(prepare(spec, COLUMNS, ROWS), spec, prices)
    teacher = quote.stage("collect").lines[0]
    assert teacher.completion_tokens == 90 * answer_tokens("Hardware and peripherals", "gpt-4o")
    assert any("longest choice" in note for note in quote.notes)


def test_the_quote_hash_binds_spec_token_counts_and_prices(prices, tmp_path):
    prepared = prepare(SPEC, COLUMNS, ROWS)
    first = estimate(prepared, SPEC, prices).quote_hash
    assert estimate(prepared, SPEC, prices).quote_hash == first
    cheaper = RunSpec(**{**SPEC.to_dict(), "budget_micro_usd": 1_000_000, "choices": None})
    assert estimate(prepared, cheaper, prices).quote_hash != first
    override = tmp_path / "prices.json"
    override.write_text(json.dumps({"models": {"gpt-4o": {"input": "2.49", "output": "10", "as_of": "2027-01-01",
                                                          "source": "https://example.com"}}}))
    assert estimate(prepared, SPEC, PriceTable.load(override)).quote_hash != first


async def test_the_estimate_equals_the_usage_the_sandbox_reports(openai_sandbox, prices):
    prepared = prepare(SPEC, COLUMNS, ROWS)
    student = estimate(prepared, SPEC, prices).stage("collect").lines[1]
    client = AsyncOpenAI(base_url=openai_sandbox.url, api_key=openai_sandbox.api_key)
    prompt_total = 0
    for row in prepared.eval:
        response = await client.chat.completions.create(
            model=SPEC.student, messages=build_messages(SPEC, row.user_prompt),
            response_format=response_format(prepared.choices))
        prompt_total += response.usage.prompt_tokens
        label = json.loads(response.choices[0].message.content)["label"]
        assert response.usage.completion_tokens == answer_tokens(label, SPEC.student)
    await client.close()
    assert prompt_total == student.prompt_tokens


# --- the cookbook's own figure ------------------------------------------------------------------------------

def cookbook_choices(shared_dir: Path) -> list[str]:
    loaded = load_csv((shared_dir / "data" / "wine-reviews-france-country-points-price-variety.csv").read_bytes(),
                      filename="france.csv", max_bytes=1 << 30, max_rows=10**6)
    counts = loaded.frame["variety"].value_counts()
    return [variety for variety in loaded.frame["variety"].unique() if counts[variety] >= 5]


def test_the_cookbook_estimate_for_500_rows_is_reproduced_within_3_percent(shared_dir, prices):
    choices = cookbook_choices(shared_dir)
    assert len(choices) == 76
    loaded = load_csv((shared_dir / "data" / "wine-reviews-france.csv").read_bytes(),
                      filename="wine-reviews-france.csv", max_bytes=1 << 30, max_rows=10**6)
    spec = RunSpec(label="variety", template=TEMPLATE.read_text(encoding="utf-8"), choices=tuple(choices),
                   train_size=450, eval_size=50, **OPENAI)
    prepared = prepare(spec, loaded.columns, loaded.rows_by_index())
    rows = [*prepared.train, *prepared.eval]
    counted = user_prompt_tokens(prepared, rows, "gpt-4o")
    encoding = get_encoding("o200k_base")
    assert [int(n) for n in counted] == [len(encoding.encode(r.user_prompt)) for r in rows]
    assert len(rows) == 500 and abs(int(counted.sum()) - 245_439) / 245_439 < 0.03
    gpt4o = prices.get("gpt-4o")
    assert abs(gpt4o.cost_micro_usd(int(counted.sum()), 0) - 613_598) / 613_598 < 0.03  # the cookbook's $0.61
    teacher = estimate(prepared, spec, prices).stage("collect").lines[0]
    assert teacher.prompt_tokens == int(counted.sum()) + 500 * count_chat_tokens(build_messages(spec, ""), "gpt-4o")
    assert rows[0].user_prompt.startswith("\n    Based on this wine review, guess the grape variety:\n")


# --- a Together run (the default trainer) -------------------------------------------------------------------------

TOGETHER_SPEC = RunSpec(label="category", system="Sort IT tickets.", template="{text}\nOne of: {choices}",
                        train_size=60, eval_size=30)


def test_a_together_estimate_prices_the_deployment_once_in_the_evaluate_stage_and_togethers_epochs(prices):
    prepared = prepare(TOGETHER_SPEC, COLUMNS, ROWS)
    billing = billing_for("together", TOGETHER_SPEC.student)
    quote = estimate(prepared, TOGETHER_SPEC, prices, billing)
    distilled, hosting = quote.stage("evaluate").lines
    assert (distilled.model, distilled.cost_micro_usd) == ("ft:Qwen/Qwen3.5-9B", 0)  # no per-token price
    # 10 minutes to provision, 1 for 30 requests at 120 a minute, 1 to stop: 12 minutes of one H100 at $3.99/h.
    assert (hosting.role, hosting.model, hosting.minutes, hosting.cost_micro_usd) == (
        "hosting", "1xnvidia-h100-80gb", 12, 798_000)
    assert hosting.batch_cost_micro_usd == hosting.cost_micro_usd  # hardware minutes have no Batch discount
    assert quote.stage("evaluate").cost_micro_usd == 798_000
    train = quote.stage("train")
    # No "auto" at Together: the bot sends the epochs of its rule, and the stage's maximum is exactly that, at least
    # the $4.00 minimum charge per job (this file's tokens cost cents).
    assert (train.epochs, train.epochs_range) == (default_epochs(60), None)
    assert train.cost_micro_usd == train.upper_cost_micro_usd == 4_000_000
    notes = "\n".join(quote.notes)
    assert f"the bot sends n_epochs={default_epochs(60)}" in notes and "expected to pick" not in notes
    assert "at least $4.00 per job" in notes and notes.count("dedicated deployment (1xnvidia-h100-80gb") == 1
    assert quote.prices["dedicated:1xnvidia-h100-80gb"]["usd_per_hour"] == "3.99"
    dearer = dataclasses.replace(billing, hosting=dataclasses.replace(billing.hosting, usd_per_hour=Decimal("5.49")))
    assert estimate(prepared, TOGETHER_SPEC, prices, dearer).quote_hash != quote.quote_hash  # approvals bind to it


def test_an_estimate_refuses_billing_meant_for_another_trainer(prices):
    prepared = prepare(TOGETHER_SPEC, COLUMNS, ROWS)
    with pytest.raises(ValueError, match="billing of trainer 'openai' given for a run trained at 'together'"):
        estimate(prepared, TOGETHER_SPEC, prices)
