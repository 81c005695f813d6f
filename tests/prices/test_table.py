"""The price table's model facts: today's OpenAI models, what each accepts, and when each goes away."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import numpy as np
import pytest

from bot.core.errors import PriceError
from bot.prices.table import PriceTable

CURRENT = ("gpt-6.2-astra", "gpt-6.2-sol", "gpt-6.1-sol", "gpt-6.1-terra", "gpt-6-luna")


@pytest.fixture(scope="module")
def prices() -> PriceTable:
    return PriceTable.load()


def test_todays_openai_models_are_priced_dated_sourced_and_none_can_be_fine_tuned(prices):
    for model in CURRENT:
        price = prices.get(model)
        assert price.training_usd_per_1m is None and price.facts.reasons and price.facts.shutdown_date is None
        assert price.as_of == dt.date(2026, 11, 29) and price.source.startswith("https://developers.openai.com/")
        assert price.batch_discount == Decimal("0.5")
        assert (price.facts.context_window_tokens, price.facts.max_output_tokens) == (1_050_000, 128_000)
    sol = prices.get("gpt-6.2-sol")
    assert (sol.input_usd_per_1m, sol.cached_input_usd_per_1m, sol.output_usd_per_1m, sol.cache_write_usd_per_1m) == (
        Decimal("2.00"), Decimal("0.10"), Decimal("10.00"), Decimal("2.50"))
    assert sol.facts.reasoning_efforts == ("low", "medium", "high", "xhigh", "max")
    terra = prices.get("gpt-6.1-terra")
    assert terra.facts.reasoning_efforts[0] == "none" and terra.facts.default_effort == "medium"
    luna = prices.get("gpt-6-luna")
    assert (luna.input_usd_per_1m, luna.output_usd_per_1m) == (Decimal("0.10"), Decimal("0.50"))
    # Figures no OpenAI page gave are said to be third-party or derived.
    assert "derived" in prices.get("gpt-6.2-astra").note and "LiteLLM" in prices.get("gpt-6.2-astra").note


def test_temperature_goes_only_where_the_model_takes_it(prices):
    assert prices.get("gpt-4o").facts.accepts_temperature(None)
    assert not prices.get("gpt-6.2-sol").facts.accepts_temperature("low")
    terra = prices.get("gpt-6.1-terra").facts
    assert terra.accepts_temperature("none") and not terra.accepts_temperature("low")
    assert not prices.get("gpt-5").facts.accepts_temperature("minimal")


def test_shut_down_and_shutting_down_models_carry_their_dates(prices, clock):
    today = clock.today()
    for model in ("gpt-5", "gpt-5-mini", "gpt-5-nano"):
        assert prices.get(model).facts.shutdown_date == dt.date(2026, 12, 11)
    for model in ("gpt-4o", "gpt-4o-mini-2024-07-18", "gpt-4.1-mini", "ft:gpt-4o-mini-2024-07-18:acme::x"):
        assert prices.get(model).facts.shutdown_date == dt.date(2027, 1, 14)
    nano = prices.get("gpt-4.1-nano-2025-04-14").facts
    assert nano.shutdown_date == dt.date(2026, 10, 23) and nano.shut_down(today)
    assert not prices.get("gpt-4o").facts.shut_down(today)
    assert all(p.facts.shutdown_source for p in prices.prices.values() if p.facts.shutdown_date)


def test_the_embedding_models_are_listed_and_the_provider_comes_from_the_source(prices):
    small, large = prices.get("text-embedding-3-small"), prices.get("text-embedding-3-large")
    assert (small.facts.kind, small.input_usd_per_1m, small.facts.dimensions) == ("embedding", Decimal("0.02"), 1536)
    assert (large.input_usd_per_1m, large.facts.dimensions) == (Decimal("0.13"), 3072)
    assert prices.get("Qwen/Qwen3.5-9B").facts.provider == "together"
    assert prices.get("gpt-6-luna").facts.provider == "openai"


def test_the_sum_of_request_costs_rounds_each_request_up_like_the_collector(prices):
    prompts = np.array([1, 77, 2_013, 40_001])
    for model, batch in (("gpt-6.2-sol", False), ("ft:gpt-4o-2024-08-06", True), ("gpt-6-luna", True)):
        price = prices.get(model)
        expected = sum(price.cost_micro_usd(int(p), 4_112, batch=batch) for p in prompts)
        assert price.requests_cost_micro_usd(prompts, 4_112, batch=batch) == expected


@pytest.mark.parametrize(("fields", "expected"), [
    ({"reasoning_efforts": ["low", "turbo"], "default_effort": "low"}, "expected a list of distinct values from none"),
    ({"reasoning_efforts": ["low", "high"], "default_effort": "medium"}, "names one of its reasoning_efforts"),
    ({"reasoning_efforts": ["low"]}, "default_effort"),
    ({"reasoning_efforts": ["low"], "default_effort": "low", "temperature": "with_effort_none"}, "no effort none"),
    ({"temperature": "sometimes"}, "expected one of always, with_effort_none, never"),
    ({"shutdown_date": "2027-01-14"}, "shutdown_source"),
    ({"shutdown_date": "soon", "shutdown_source": "https://x"}, "expected a date such as 2027-01-14"),
    ({"max_output_tokens": 0}, "whole number of tokens >= 1"),
    ({"kind": "image"}, "expected one of chat, embedding"),
])
def test_a_wrong_model_fact_is_named_with_what_it_may_be(tmp_path, fields, expected):
    entry = {"input": "1", "output": "2", "training": None, "as_of": "2026-11-29",
             "source": "https://developers.openai.com/api/docs/models", **fields}
    path = tmp_path / "prices.json"
    path.write_text(json.dumps({"models": {"my-model": entry}}))
    with pytest.raises(PriceError, match="my-model") as raised:
        PriceTable.load(path)
    assert expected in str(raised.value)
