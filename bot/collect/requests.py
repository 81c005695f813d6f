"""The exact requests a run sends to one model on some rows: messages, prompt tokens and the answer budget."""

from __future__ import annotations

from typing import Any

from bot.collect.engine import CollectRequest, CollectTask
from bot.costs.quotes import count_chat_tokens, longest_answer_tokens
from bot.data.splits import PreparedRow, PreparedRun
from bot.prices.table import PriceTable
from bot.prompts.templates import response_format
from bot.spec.budgets import budget_for
from bot.spec.messages import build_messages
from bot.spec.settings import RunSpec


def requests_for(spec: RunSpec, rows: list[PreparedRow], model: str) -> list[CollectRequest]:
    """The exact requests for these rows, with their prompt tokens for `model` (CPU work)."""
    requests = []
    for row in rows:
        messages = build_messages(spec, row.user_prompt)
        requests.append(CollectRequest(row.row_index, messages, count_chat_tokens(messages, model)))
    return requests


def response_format_for(prepared: PreparedRun) -> dict[str, Any]:
    return response_format(list(prepared.choices))


def task_for(prices: PriceTable, run_id: int, spec: RunSpec, prepared: PreparedRun, role: str, model: str,
             split: str, rows: list[PreparedRow]) -> CollectTask:
    """One model's requests on some rows, with their exact token counts and answer budget (CPU work)."""
    choices = list(prepared.choices)
    budget = budget_for(spec, prices, role, model, longest_answer_tokens(choices, model))
    return CollectTask(run_id=run_id, split=split, role=role, model=model, requests=requests_for(spec, rows, model),
                       response_format=response_format(choices), choices=choices, budget=budget)
