"""How many tokens a model may spend on one answer, thinking included, and what each chat request carries for it.

Reasoning models (gpt-6.x, gpt-5) think in hidden tokens billed as output. `max_completion_tokens` is "an upper
bound for the number of tokens that can be generated for a completion, including visible output tokens and
reasoning tokens" (OpenAI's spec, CreateChatCompletionRequest, openapi.yaml lines 33146-33152), so it is what
makes the approved cap hard: every request sends it, and reserves its prompt plus that many completion tokens
at the output price before it goes (bot/collect/engine.py, bot/collect/batch.py). A model that runs out of it stops with
`finish_reason: "length"` and, when the reasoning took it all, an empty answer (billed all the same).

The budget of an answer is the longest possible answer plus ANSWER_SLACK_TOKENS, plus the reasoning allowance
of the effort it is asked at (REASONING_ALLOWANCE_TOKENS), within the model's max output; the run's
`max_answer_tokens` replaces that total. The allowances are the bot's ceilings, not OpenAI figures: they bound
what an answer may cost, and the expected cost comes from a pilot that measures the provider's
`usage.completion_tokens_details.reasoning_tokens` (bot/collect/pilot.py). OpenAI's reasoning guide advises reserving
about 25,000 tokens for reasoning and answer when starting out on hard problems; picking a label takes far
less, and a team that sees answers cut off raises max_answer_tokens or lowers the effort.

Efforts: a teacher is asked at the run's `teacher_effort`, by default the cheapest its model takes (`none` where
it takes it, else `minimal` or `low`); every other model at its cheapest. `reasoning_effort` goes only to models
that take one (the price table's `reasoning_efforts`), and `temperature` (0: a label should not depend on
sampling) only where the model accepts it: OpenAI refuses it from a reasoning model unless the effort is `none`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.core.errors import SpecError
from bot.prices.table import EFFORTS, ModelFacts, ModelPrice

# The most reasoning tokens one answer may use at each effort (see the module docstring).
REASONING_ALLOWANCE_TOKENS = {
    "none": 0,
    "minimal": 1_024,
    "low": 4_096,
    "medium": 16_384,
    "high": 32_768,
    "xhigh": 65_536,
    "max": 100_000,
}
assert tuple(REASONING_ALLOWANCE_TOKENS) == EFFORTS
# Room beyond the exact answer, so spacing in the JSON or another tokenizer's split (Together's models are
# counted with o200k_base) cannot cut a right answer off.
ANSWER_SLACK_TOKENS = 16
TEMPERATURE = 0


def cheapest_effort(facts: ModelFacts) -> str | None:
    """The cheapest reasoning effort the model takes; None for a model that does not reason."""
    return facts.reasoning_efforts[0] if facts.reasoning_efforts else None


def accepted_efforts(model: str, facts: ModelFacts) -> str:
    """The efforts a model takes, in words for a message."""
    if not facts.reasons:
        return f"{model} does not reason, so it takes no effort (teacher_effort=default)"
    return f"{model} takes {', '.join(facts.reasoning_efforts)} (default here: {cheapest_effort(facts)})"


def check_effort(model: str, facts: ModelFacts, effort: str | None) -> str | None:
    """The effort to send `model`: `effort`, or the cheapest it takes when None. SpecError names the accepted ones."""
    if effort is None:
        return cheapest_effort(facts)
    if effort not in facts.reasoning_efforts:
        raise SpecError(f"teacher_effort={effort} does not suit the teacher: {accepted_efforts(model, facts)}.")
    return effort


@dataclass(frozen=True)
class AnswerBudget:
    """What one model's requests carry for their answer, and the most each answer may cost in tokens."""

    model: str
    effort: str | None  # sent as reasoning_effort; None for a model that does not reason
    answer_tokens: int  # the longest possible answer
    reasoning_allowance_tokens: int  # the effort's ceiling (0 without reasoning)
    max_completion_tokens: int  # sent: answer and reasoning together; reserved against the cap
    temperature: int | None  # sent where the model accepts it
    max_answer_tokens: int | None = None  # the run's setting, when it replaced the total

    def request_options(self) -> dict[str, Any]:
        """The request fields this budget adds to a chat completion (live and in batch lines alike)."""
        options: dict[str, Any] = {"max_completion_tokens": self.max_completion_tokens}
        if self.effort is not None:
            options["reasoning_effort"] = self.effort
        if self.temperature is not None:
            options["temperature"] = self.temperature
        return options

    def cut_off(self, reasoning_tokens: int) -> str:
        return cut_off_error(self.max_completion_tokens, self.effort, reasoning_tokens)


def cut_off_error(max_completion_tokens: int | None, effort: str | None, reasoning_tokens: int) -> str:
    """The error of an answer the model could not finish within max_completion_tokens, naming the fix."""
    budget = f"{max_completion_tokens:,}" if max_completion_tokens is not None else "its"
    spent = f"all {budget} completion tokens"
    if effort is not None:
        spent += f" ({reasoning_tokens:,} of them reasoning at effort {effort})"
    return f"cut off: the model used {spent} before it answered; {cut_off_fix(max_completion_tokens, effort)}."


def cut_off_fix(max_completion_tokens: int | None, effort: str | None) -> str:
    """What to change when answers run out of max_completion_tokens."""
    budget = f"{max_completion_tokens:,}" if max_completion_tokens is not None else "its"
    fix = f"raise max_answer_tokens (now {budget})"
    if effort not in (None, "none"):
        fix += f" or lower teacher_effort (now {effort})"
    return fix


def answer_budget(model: str, price: ModelPrice, *, answer_tokens: int, effort: str | None = None,
                  max_answer_tokens: int | None = None) -> AnswerBudget:
    """The budget of `model`'s answers of at most `answer_tokens` tokens, asked at `effort` (None: its cheapest)."""
    facts = price.facts
    chosen = check_effort(model, facts, effort)
    allowance = REASONING_ALLOWANCE_TOKENS[chosen] if chosen is not None else 0
    ceiling = facts.max_output_tokens
    if max_answer_tokens is not None:
        if max_answer_tokens < answer_tokens:
            raise SpecError(f"max_answer_tokens={max_answer_tokens} is below the longest answer {model} may have to "
                            f"write ({answer_tokens} tokens). Raise it to at least {answer_tokens}.")
        if ceiling is not None and max_answer_tokens > ceiling:
            raise SpecError(f"max_answer_tokens={max_answer_tokens} is over {model}'s most output tokens per "
                            f"request ({ceiling:,}). Lower it.")
        total = max_answer_tokens
    else:
        total = answer_tokens + ANSWER_SLACK_TOKENS + allowance
        if ceiling is not None:
            total = min(total, ceiling)
    temperature = TEMPERATURE if facts.accepts_temperature(chosen) else None
    return AnswerBudget(model, chosen, answer_tokens, allowance, total, temperature, max_answer_tokens)


@dataclass(frozen=True)
class ReasoningExpectation:
    """Reasoning tokens per answer of one model at one effort, as a pilot measured them on the run's own rows."""

    model: str
    effort: str | None
    rows: int  # answers measured
    mean_tokens: float
    p90_tokens: int
    max_tokens: int
    cut_off: int = 0  # answers that ran out of the budget: their reasoning counts as the budget, a lower bound

    def describe(self) -> str:
        """The sentence quotes use: 'expected from a pilot of 20 rows: ...'."""
        text = (f"expected from a pilot of {self.rows} rows: {self.mean_tokens:,.0f} reasoning tokens per answer "
                f"(mean; p90 {self.p90_tokens:,})")
        if self.cut_off:
            text += (f"; {self.cut_off} of them ran out of max_completion_tokens, so the real mean is higher: raise "
                     "max_answer_tokens and pilot again")
        return text

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "effort": self.effort, "pilot_rows": self.rows,
                "mean_reasoning_tokens": self.mean_tokens, "p90_reasoning_tokens": self.p90_tokens,
                "max_reasoning_tokens": self.max_tokens, "cut_off": self.cut_off}
