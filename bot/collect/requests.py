"""The exact requests a run sends to one model on some rows: messages, prompt tokens and the answer budget."""

from __future__ import annotations

from bot.collect.engine import CollectRequest, CollectTask
from bot.costs.quotes import count_chat_tokens
from bot.data.splits import PreparedRow, PreparedRun
from bot.prices.table import PriceTable
from bot.spec.budgets import budget_for
from bot.spec.messages import build_messages
from bot.spec.settings import RunSpec
from storage.runs import Run


def requests_for(spec: RunSpec, rows: list[PreparedRow], model: str) -> list[CollectRequest]:
    """The exact requests for these rows, with their prompt tokens for `model` (CPU work)."""
    requests = []
    for row in rows:
        messages = build_messages(spec, row.user_prompt)
        requests.append(CollectRequest(row.row_index, messages, count_chat_tokens(messages, model)))
    return requests


def task_for(prices: PriceTable, run: Run, spec: RunSpec, prepared: PreparedRun, role: str, model: str,
             split: str, rows: list[PreparedRow]) -> CollectTask:
    """One model's requests on some rows, with their exact token counts and answer budget (CPU work)."""
    answer = spec.answer_format(prepared.choices)
    longest = answer.longest_tokens(model, spec.max_answer_tokens)
    budget = budget_for(spec, prices, role, model, longest)
    return CollectTask(run_id=run.id, split=split, role=role, model=model, requests=requests_for(spec, rows, model),
                       answer=answer, budget=budget, run_name=run.name)
