"""trainer=dicl's parts: its settings, the estimate of its stages, what the back end offers and checks, the
prompt it builds, and the nearest-neighbour search."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from bot.core.clock import Clock
from bot.core.config import Secret
from bot.core.errors import SpecError
from bot.costs.quotes import count_chat_tokens, estimate
from bot.data.splits import prepare
from bot.prices.table import PriceTable
from bot.prompts.encodings import get_encoding
from bot.prompts.templates import answer_json
from bot.spec.messages import build_messages
from bot.spec.settings import RunSpec
from bot.train.dicl import _shares
from bot.train.neighbours import NearestIndex
from bot.trainers import billing_for
from bot.trainers.dicl import DiclTrainer, example_messages

CHOICES = {"Billing": "invoice charged twice", "Network": "the VPN drops every hour", "Access": "account locked"}
ROWS = {i: {"text": f"Ticket {i}: {CHOICES[label]}", "category": label}
        for i, label in enumerate(["Billing", "Network", "Access"] * 40)}
SPEC = RunSpec(label="category", system="Sort IT tickets.", template="{text}\nOne of: {choices}", train_size=60,
               eval_size=30, teacher="gpt-6.2-sol", student="gpt-6-luna", trainer="dicl")


@pytest.fixture(scope="module")
def prices() -> PriceTable:
    return PriceTable.load()


def test_k_and_the_embedding_model_are_settings_checked_against_the_price_table(prices):
    spec = RunSpec().with_assignments({"trainer": "dicl", "k": "3", "embedding_model": "text-embedding-3-large"},
                                      prices)
    assert (spec.trainer, spec.k, spec.embedding_model) == ("dicl", 3, "text-embedding-3-large")
    assert (RunSpec().k, RunSpec().embedding_model) == (8, "text-embedding-3-small")
    with pytest.raises(SpecError, match="k: expected a whole number from 0 to 100, got '101'"):
        RunSpec().with_assignments({"k": "101"})
    with pytest.raises(SpecError, match="embedding_model=gpt-6-luna is a chat model, not an embedding model"):
        RunSpec().with_assignments({"embedding_model": "gpt-6-luna"}, prices)


def _estimate(prices, **changes):
    spec = RunSpec(**{**SPEC.to_dict(), "choices": None, **changes})
    prepared = prepare(spec, ["text", "category"], ROWS)
    return spec, prepared, estimate(prepared, spec, prices, billing_for("dicl", spec.student))


def test_the_estimate_prices_the_embeddings_and_the_k_examples_in_each_prompt(prices):
    spec, prepared, quote = _estimate(prices, k=4)
    cl100k, o200k = get_encoding("cl100k_base"), get_encoding("o200k_base")  # text-embedding-3's, gpt-6-luna's
    [index] = quote.stage("train").lines
    assert (index.role, index.model, index.rows) == ("embedding", "text-embedding-3-small", 60)
    assert index.prompt_tokens == sum(len(cl100k.encode(r.user_prompt)) for r in prepared.train)
    assert index.cost_micro_usd == -(-index.prompt_tokens * 2 // 100)  # $0.02 per 1M, one request
    distilled, queries = quote.stage("evaluate").lines
    assert queries.prompt_tokens == sum(len(cl100k.encode(r.user_prompt)) for r in prepared.eval)

    def pair(row):  # a solved example: the row as a user turn, its answer as the assistant's
        return sum(3 + len(o200k.encode(role)) + len(o200k.encode(text)) for role, text in
                   (("user", row.user_prompt), ("assistant", answer_json(row.gold_label))))

    sizes = sorted(pair(row) for row in prepared.train)
    base = [count_chat_tokens(build_messages(spec, r.user_prompt), "gpt-6-luna") for r in prepared.eval]
    assert distilled.prompt_tokens == sum(base) + 30 * round(4 * sum(sizes) / len(sizes))
    luna = prices.get("gpt-6-luna")
    most = sum(luna.cost_micro_usd(b + sum(sizes[-4:]), distilled.max_completion_tokens // 30) for b in base)
    assert distilled.max_cost_micro_usd == most  # the 4 longest examples in every prompt
    assert quote.stage("train").epochs is None and any("trainer=dicl fine-tunes nothing" in n for n in quote.notes)


def test_with_k_0_the_estimate_is_the_base_student_and_nothing_is_embedded(prices):
    _, _, quote = _estimate(prices, k=0)
    assert quote.stage("train").lines == ()
    [distilled] = quote.stage("evaluate").lines
    base = quote.stage("collect").lines[1]
    assert (distilled.prompt_tokens, distilled.cost_micro_usd, distilled.model) == (
        base.prompt_tokens, base.cost_micro_usd, base.model)


def test_the_requests_put_the_examples_between_the_system_prompt_and_the_row():
    messages = example_messages(SPEC, [("far", '{"label":"A"}'), ("near", '{"label":"B"}')], "the row")
    assert [(m["role"], m["content"]) for m in messages] == [
        ("system", "Sort IT tickets."), ("user", "far"), ("assistant", '{"label":"A"}'), ("user", "near"),
        ("assistant", '{"label":"B"}'), ("user", "the row")]
    bare = RunSpec(system=None)
    assert example_messages(bare, [], "row") == build_messages(bare, "row")


async def test_any_current_openai_chat_model_can_be_the_student(openai_sandbox, clock, prices):
    trainer = DiclTrainer(base_url=openai_sandbox.url, api_key=Secret("sk-sandbox"), clock=clock)
    try:
        students = {s.model for s in trainer.students(prices)}
        luna = await trainer.check_base_model("gpt-6-luna")
        unknown = await trainer.check_base_model("gpt-9")
        openai_sandbox.catalog.set_shutdown_date("gpt-6-luna", (clock.today() + dt.timedelta(days=20)).isoformat())
        soon = await trainer.check_base_model("gpt-6-luna")
        trainer.clock = Clock.at("2027-02-01")
        gone = await trainer.check_base_model("gpt-4o-mini-2024-07-18")
    finally:
        await trainer.close()
    assert {"gpt-6-luna", "gpt-6.2-sol", "gpt-4o-mini-2024-07-18"} <= students
    assert not any(m.startswith(("ft:", "text-embedding")) or "/" in m for m in students)
    assert luna.trainable and not luna.message
    assert not unknown.trainable and "does not serve gpt-9" in unknown.message
    assert "student=gpt-6-luna" in unknown.message
    assert soon.warning and "in 20 days" in soon.message
    assert not gone.trainable and "was shut down on 2027-01-14" in gone.message


def test_nearest_neighbours_by_cosine_the_same_with_numpy_and_faiss():
    rng = np.random.default_rng(3)
    vectors = rng.standard_normal((500, 32)).astype(np.float32) * rng.uniform(0.5, 2, (500, 1)).astype(np.float32)
    queries = vectors[[7, 99, 300]] + 0.05 * rng.standard_normal((3, 32)).astype(np.float32)
    exact = NearestIndex(vectors).search(queries, 5)
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    cosine = (queries / np.linalg.norm(queries, axis=1, keepdims=True)) @ unit.T
    assert exact.tolist() == np.argsort(-cosine, axis=1)[:, :5].tolist()
    assert exact[:, 0].tolist() == [7, 99, 300]
    assert NearestIndex(vectors, numpy_max_scores=0).search(queries, 5).tolist() == exact.tolist()  # faiss


def test_equal_scores_are_ordered_by_position_and_k_is_bounded_by_the_index():
    vectors = np.array([[1, 0], [0, 1], [1, 0], [1, 0]], dtype=np.float32)
    for limit in (10**6, 0):  # numpy, then faiss
        index = NearestIndex(vectors, numpy_max_scores=limit)
        assert index.search(np.array([[1, 0]], dtype=np.float32), 2).tolist() == [[0, 2]]
        assert index.search(np.array([[0, 1]], dtype=np.float32), 9).shape == (1, 4)
    assert NearestIndex(vectors).search(np.array([[1, 0]], dtype=np.float32), 0).shape == (1, 0)


def test_a_requests_cost_is_shared_among_its_vectors_without_losing_a_micro_dollar():
    assert _shares(7, [10, 10, 10]) == [3, 2, 2]
    assert _shares(1, [5, 3]) == [1, 0]
    assert sum(_shares(123, [17, 4, 99, 1])) == 123
    assert _shares(5, [0, 0]) == [5, 0]
