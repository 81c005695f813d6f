"""What each trainer offers as students (`Trainer.students`), from the price table and without a network call."""

from __future__ import annotations

from bot.core.config import Secret
from bot.prices.table import PriceTable
from bot.trainers.openai import OpenAITrainer
from bot.trainers.together import TogetherTrainer
from bot.trainers.together_pricing import TogetherPrices

UNREACHABLE = "http://127.0.0.1:9/v1"  # nothing listens: any network call would fail the test


async def test_together_offers_the_models_it_trains_and_serves_at_their_training_rate():
    trainer = TogetherTrainer(base_url=UNREACHABLE, api_key=Secret("together-key"))
    try:
        students = {s.model: s for s in trainer.students(PriceTable.load())}
    finally:
        await trainer.close()
    together = TogetherPrices.load()
    # A student is offered when Together both trains it (its size is priced) and serves its fine-tunes (the eval).
    assert set(students) == set(together.billion_params) & set(together.hostable()) and students
    assert "meta-llama/Meta-Llama-3.1-8B-Instruct-Reference" not in students  # trained, but not served
    for model, student in students.items():
        assert student.training_usd_per_1m == together.training_cost(model, 1, 1, "lora").usd_per_1m
        assert student.shutdown_date is None  # Together publishes none


async def test_openai_offers_the_models_with_a_training_price_and_their_shutdown_dates():
    trainer = OpenAITrainer(base_url=UNREACHABLE, api_key=Secret("sk-test"))
    prices = PriceTable.load()
    try:
        students = {s.model: s for s in trainer.students(prices)}
    finally:
        await trainer.close()
    assert students and all(prices.get(m).training_usd_per_1m == s.training_usd_per_1m for m, s in students.items())
    assert "gpt-4o-mini-2024-07-18" in students and "gpt-4o-mini" not in students  # the alias has no training price
    assert not any(m.startswith(("gpt-6", "ft:", "text-embedding")) or "/" in m for m in students)
