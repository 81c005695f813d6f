"""Building collection tasks for tests: support-ticket prompts with a known category."""

from __future__ import annotations

import random

from bot.collect.engine import Collector, CollectRequest, CollectTask
from bot.collect.ratelimit import RateLimiters
from bot.core.provider import ChatProvider
from bot.costs.budget import Budget
from bot.costs.quotes import count_chat_tokens, longest_answer_tokens
from bot.prices.reasoning import answer_budget
from bot.prices.table import PriceTable
from bot.prompts.answers import answer_format

CHOICES = ["Billing", "Network", "Hardware", "Access"]
_CLUES = {
    "Billing": ["invoice", "refund", "charged twice", "billing address"],
    "Network": ["wifi", "vpn drops", "network is slow", "cannot reach the server"],
    "Hardware": ["laptop screen", "keyboard", "printer jam", "hardware fan noise"],
    "Access": ["password reset", "locked out", "access to the shared drive", "login fails"],
}
SYSTEM = "You sort IT support tickets into one category."


def ticket_texts(count: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    texts = []
    for i in range(count):
        category = CHOICES[i % len(CHOICES)]
        texts.append(f"Ticket {i}: {rng.choice(_CLUES[category])}, please help (ref {rng.randint(1000, 9999)}).")
    return texts


def make_task(run_id: int, count: int, *, model: str = "gpt-4o", role: str = "teacher", split: str = "train",
              seed: int = 7, effort: str | None = None, max_answer_tokens: int | None = None) -> CollectTask:
    requests = []
    for i, text in enumerate(ticket_texts(count, seed)):
        messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": text}]
        requests.append(CollectRequest(i, messages, count_chat_tokens(messages, model)))
    budget = answer_budget(model, PriceTable.load().get(model), answer_tokens=longest_answer_tokens(CHOICES, model),
                           effort=effort, max_answer_tokens=max_answer_tokens)
    return CollectTask(run_id=run_id, split=split, role=role, model=model, requests=requests,
                       answer=answer_format("classify", CHOICES), budget=budget)


def make_collector(storage, sandbox, *, rpm: int = 100_000, tpm: int = 10_000_000, concurrency: int = 16,
                   window_seconds: float = 60.0, api_key: str | None = None, **kwargs) -> Collector:
    provider = ChatProvider(base_url=sandbox.url, api_key=api_key or sandbox.api_key, store=True, timeout=10)
    limiters = RateLimiters(requests_per_minute=rpm, tokens_per_minute=tpm, window_seconds=window_seconds)
    return Collector(storage, provider, PriceTable.load(), limiters, concurrency=concurrency, **kwargs)


def unlimited() -> Budget:
    return Budget(cap_micro_usd=None)


def paid_per_prompt(sandbox) -> dict[str, int]:
    """How many times the sandbox billed each distinct prompt (by the messages' hash)."""
    counts: dict[str, int] = {}
    for record in sandbox.requests:
        if getattr(record, "paid", False):
            counts[record.messages_hash] = counts.get(record.messages_hash, 0) + 1
    return counts

