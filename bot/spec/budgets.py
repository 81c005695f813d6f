"""The answer budget each role of a run gets: its model's allowance at the run's effort and max_answer_tokens."""

from __future__ import annotations

from bot.prices.reasoning import AnswerBudget, answer_budget
from bot.prices.table import PriceTable
from bot.spec.settings import RunSpec


def budget_for(spec: RunSpec, prices: PriceTable, role: str, model: str, answer_tokens: int, *,
               price_model: str | None = None) -> AnswerBudget:
    """The budget of one role's answers in a run: the teacher at the run's teacher_effort, every other model at
    its cheapest; the run's max_answer_tokens for all. `price_model` is the price-table entry when it is not the
    model's name (a fine-tuned model served under an endpoint's name)."""
    effort = spec.teacher_effort if role == "teacher" else None
    return answer_budget(model, prices.get(price_model or model), answer_tokens=answer_tokens, effort=effort,
                         max_answer_tokens=spec.max_answer_tokens)
