"""What a run will cost, stage by stage, from exact token counts and the price table.

Chat format, as OpenAI's cookbook counts it ("How_to_count_tokens_with_tiktoken", num_tokens_from_messages
for gpt-4o and later): 3 tokens per message, plus the tokens of each value (role, content, name), plus 1
for a name, plus 3 that prime the reply. The sandbox reports usage.prompt_tokens with the same formula.
Real OpenAI requests with a json_schema response format also carry the schema, which no published formula
counts; the quote leaves it out.

Completion tokens are those of the answer JSON ({"label":"..."}): the gold label's when the row has one
(the teacher is expected to find it), otherwise the longest choice's, an upper bound. A reasoning model adds
hidden reasoning tokens, billed as output: the expected cost counts the mean a pilot measured on the run's
own rows (`ReasoningExpectation`), and says so when none has been measured (then it counts the answers only).

Every line also carries the most it can cost: each request's exact prompt plus the max_completion_tokens it
sends (bot/prices/reasoning.py), each rounded up as the collector reserves it. That is the cap a spending request
asks to approve.

How the run's trainer bills beyond the per-model price lines is a `Billing`: whether it picks the epochs itself
(OpenAI's "auto") or takes a fixed number (Together has no "auto": the bot sends `default_epochs`), and the dedicated
`Hosting` the fine-tuned model needs for its eval (Together: serverless LoRA is discontinued, so the distilled model
answers from a deployment billed per minute). The hosting is a line of the evaluate stage, so a run's quote prices
it once, and the training request (bot/train/examples.py) takes it from there.

`estimate` is CPU work proportional to the rows: callers on the event loop run it with asyncio.to_thread.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np

from bot.core.errors import SpecError
from bot.core.money import MICRO, format_usd, micro_usd_rounded_up
from bot.data.splits import PreparedRow, PreparedRun
from bot.graders import JUDGED, family, grader_for
from bot.graders.base import Sample
from bot.graders.embeddings import EMBEDDING_MODEL
from bot.graders.judges import JUDGE_ANSWER_TOKENS, JUDGE_EXPECTED_TOKENS
from bot.graders.pairwise import Pairwise
from bot.prices.context_window import too_long
from bot.prices.reasoning import AnswerBudget, ReasoningExpectation, answer_budget
from bot.prices.table import ModelPrice, PriceTable
from bot.prompts.counting import PromptCounter, TokenCache
from bot.prompts.embedding_requests import plan_batches
from bot.prompts.encodings import encoding_for_model, encoding_name_for_model
from bot.prompts.templates import Template, answer_json
from bot.spec.budgets import budget_for
from bot.spec.messages import build_messages, training_example
from bot.spec.settings import AUTO, RunSpec

TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
REPLY_PRIMING = 3

# How OpenAI picks n_epochs when it is "auto", per its cookbook "Chat_finetuning_data_prep" (pricing and
# default n_epochs estimate): 3 epochs, raised for small files and lowered for big ones, kept within 1-25.
TARGET_EPOCHS = 3
MIN_TARGET_EXAMPLES = 100
MAX_TARGET_EXAMPLES = 25_000
MIN_DEFAULT_EPOCHS = 1
MAX_DEFAULT_EPOCHS = 25

COLLECT, TRAIN, EVALUATE = "collect", "train", "evaluate"


def _chat_tokens(messages: Sequence[Mapping[str, str]], count: Callable[[str], int]) -> int:
    total = REPLY_PRIMING
    for message in messages:
        total += TOKENS_PER_MESSAGE
        for key, value in message.items():
            total += count(value) + (TOKENS_PER_NAME if key == "name" else 0)
    return total


def count_chat_tokens(messages: Sequence[Mapping[str, str]], model: str) -> int:
    """Prompt tokens of a chat request (see the module docstring for the formula and its source)."""
    encoding = encoding_for_model(model)
    return _chat_tokens(messages, lambda text: len(encoding.encode_ordinary(text)))


def check_template_window(spec: RunSpec, prices: PriceTable) -> None:
    """Refuse a template and system prompt that alone, before any row's values, overflow the teacher's or the
    student's context window with the answer (bot/prices/context_window.py). CPU work: a long template is encoded."""
    if spec.template is None and spec.system is None:
        return
    template = Template.parse(spec.template) if spec.template else None
    fixed = template.render([""] * len(template.fields)) if template else ""
    for role, setting in (("teacher", "teacher"), ("student_base", "student")):
        model = getattr(spec, setting)
        price = prices.prices.get(model)
        if price is None:
            continue  # an unknown model is refused where it is priced
        prompt = count_chat_tokens(build_messages(spec, fixed), model)
        answer = budget_for(spec, prices, role, model, 1).max_completion_tokens
        problem = too_long(model, price.facts, prompt, answer, "The template and system prompt alone")
        if problem:
            raise SpecError(f"{problem} Shorten them (`template=`, `system=`), or pick a {setting} with a larger "
                            f"window ({setting}=...).")


def answer_tokens(label: str, model: str) -> int:
    """Completion tokens of the answer {"label": label} as the model writes it."""
    return len(encoding_for_model(model).encode_ordinary(answer_json(label)))


def longest_answer_tokens(choices: Sequence[str], model: str) -> int:
    """Completion tokens of the longest answer the model may give: what its answer budget starts from."""
    return max(answer_tokens(choice, model) for choice in choices)


def count_training_file_tokens(examples: Sequence[Sequence[Mapping[str, str]]], model: str) -> int:
    """Tokens of a chat fine-tuning file (one message list per line), each distinct text encoded once."""
    cache = TokenCache(encoding_for_model(model))
    return sum(_chat_tokens(example, cache.count) for example in examples)


def default_epochs(examples: int) -> int:
    """The epochs OpenAI's "auto" is expected to pick for this many training examples."""
    if examples * TARGET_EPOCHS < MIN_TARGET_EXAMPLES:
        return min(MAX_DEFAULT_EPOCHS, MIN_TARGET_EXAMPLES // max(examples, 1))
    if examples * TARGET_EPOCHS > MAX_TARGET_EXAMPLES:
        return max(MIN_DEFAULT_EPOCHS, MAX_TARGET_EXAMPLES // examples)
    return TARGET_EPOCHS


@dataclass(frozen=True)
class Hosting:
    """A dedicated deployment serving the fine-tuned model for its eval, billed per minute of each ready replica.

    The quote counts `startup_minutes` to provision it (a margin: Together bills ready replicas only, and the bot's
    record of the cost starts when the deployment is READY), the eval's requests at `requests_per_minute`, and the
    minute it is stopped in."""

    hardware: str
    usd_per_hour: Decimal
    as_of: str
    source: str
    startup_minutes: int = 10
    requests_per_minute: int = 120
    replicas: int = 1

    def minutes(self, requests: int) -> int:
        return self.startup_minutes + math.ceil(requests / self.requests_per_minute) + 1

    def cost_micro_usd(self, minutes: int) -> int:
        """Whole minutes of the replicas at the hourly price, rounded up to a micro-dollar."""
        return micro_usd_rounded_up(self.usd_per_hour * self.replicas * minutes * MICRO / 60)

    def price_entry(self) -> dict[str, Any]:
        return {"hardware": self.hardware, "usd_per_hour": str(self.usd_per_hour), "replicas": self.replicas,
                "as_of": self.as_of, "source": self.source}

    def explain(self, requests: int) -> str:
        minutes = self.minutes(requests)
        return (f"The distilled model answers the eval from a dedicated deployment ({self.hardware}, "
                f"${self.usd_per_hour}/hour per ready replica, billed per minute): {self.startup_minutes} minutes to "
                f"provision (a margin: only ready minutes are billed), {minutes - self.startup_minutes - 1} for "
                f"{requests:,} requests at {self.requests_per_minute} a minute, and 1 to stop it = {minutes} minutes, "
                f"{format_usd(self.cost_micro_usd(minutes))}. The bot deletes it as soon as the eval ends and records "
                "the minutes it was ready.")


@dataclass(frozen=True)
class Billing:
    """How the run's trainer bills beyond the per-model price lines (see the module docstring)."""

    trainer: str = "openai"
    auto_epochs: bool = True  # the provider picks n_epochs itself when the spec says "auto"
    hosting: Hosting | None = None
    # Price lines the trainer sets for its student and its fine-tunes, over the table's (a self-hosted student:
    # nothing per token, training by the GPU time its tokens take).
    models: tuple[ModelPrice, ...] = ()
    # Nothing is fine-tuned: the student answers with the teacher's nearest examples in its prompt (trainer=dicl),
    # so the train stage embeds the examples' inputs and the evaluate stage pays for longer prompts and the queries.
    in_context: bool = False


@dataclass(frozen=True)
class ExampleTokens:
    """Prompt tokens that solved examples add to each request: expected (k examples of the mean size) and most (the
    k largest)."""

    expected: int = 0
    most: int = 0


@dataclass(frozen=True)
class Line:
    """One model's part of a stage."""

    role: str  # teacher, student (base) or distilled
    model: str
    split: str
    rows: int
    prompt_tokens: int = 0
    completion_tokens: int = 0  # expected: the answers, and the reasoning a pilot measured
    trained_tokens: int = 0  # training-file tokens times epochs
    cost_micro_usd: int = 0  # expected
    batch_cost_micro_usd: int = 0  # the same work through the Batch API (training has no batch price)
    reasoning_tokens: int = 0  # of completion_tokens, the expected reasoning
    max_completion_tokens: int = 0  # rows times the max_completion_tokens each request sends
    max_cost_micro_usd: int = 0  # the most it can cost: every request at its max_completion_tokens
    max_batch_cost_micro_usd: int = 0
    effort: str | None = None  # the reasoning_effort sent; None for a model that does not reason
    reasoning: str = "none"  # none (no reasoning) | measured | not measured
    minutes: int = 0  # a dedicated deployment's billed minutes (role "hosting")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Stage:
    name: str
    lines: tuple[Line, ...]
    training_file_tokens: int = 0
    epochs: int | None = None
    epochs_range: tuple[int, int] | None = None  # when epochs are "auto": the bounds OpenAI's rule keeps to

    def total(self, field: str) -> int:
        return sum(getattr(line, field) for line in self.lines)

    @property
    def cost_micro_usd(self) -> int:
        return self.total("cost_micro_usd")

    @property
    def batch_cost_micro_usd(self) -> int:
        return self.total("batch_cost_micro_usd")

    @property
    def upper_cost_micro_usd(self) -> int:
        """The most the stage can cost (training at the top of epochs_range, answers at their whole budget)."""
        return self.total("max_cost_micro_usd")

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "lines": [line.to_dict() for line in self.lines],
            "prompt_tokens": self.total("prompt_tokens"),
            "completion_tokens": self.total("completion_tokens"),
            "trained_tokens": self.total("trained_tokens"),
            "training_file_tokens": self.training_file_tokens,
            "epochs": self.epochs,
            "epochs_range": list(self.epochs_range) if self.epochs_range else None,
            "cost_micro_usd": self.cost_micro_usd,
            "batch_cost_micro_usd": self.batch_cost_micro_usd,
            "max_cost_micro_usd": self.upper_cost_micro_usd,
            "max_batch_cost_micro_usd": self.total("max_batch_cost_micro_usd"),
            "cost_usd": format_usd(self.cost_micro_usd),
            "batch_cost_usd": format_usd(self.batch_cost_micro_usd),
            "max_cost_usd": format_usd(self.upper_cost_micro_usd),
        }


@dataclass(frozen=True)
class Quote:
    stages: tuple[Stage, ...]
    mode: str
    rows: dict[str, Any]  # PreparedRun.to_dict(): rows used, left out, duplicates
    prices: dict[str, dict[str, Any]]  # the price entries used, by model
    notes: tuple[str, ...]
    quote_hash: str  # sha256 over spec, token counts and prices: approvals bind to it
    reasoning: tuple[dict[str, Any], ...] = ()  # per reasoning role: effort, budget, and what a pilot measured

    def stage(self, name: str) -> Stage:
        for stage in self.stages:
            if stage.name == name:
                return stage
        raise KeyError(f"no stage {name!r}; stages: {', '.join(s.name for s in self.stages)}")

    def total(self, field: str) -> int:
        return sum(getattr(stage, field) for stage in self.stages)

    def amount_micro_usd(self, stage: str | None = None) -> int:
        """What the stage (or the whole run) is expected to cost in the run's mode: Batch prices when mode is
        batch."""
        field = "batch_cost_micro_usd" if self.mode == "batch" else "cost_micro_usd"
        return getattr(self.stage(stage), field) if stage else self.total(field)

    def max_amount_micro_usd(self, stage: str | None = None) -> int:
        """The most the stage (or the whole run) can cost in the run's mode."""
        field = "max_batch_cost_micro_usd" if self.mode == "batch" else "max_cost_micro_usd"
        stages = [self.stage(stage)] if stage else self.stages
        return sum(s.total(field) for s in stages)

    def to_dict(self) -> dict[str, Any]:
        return {
            "quote_hash": self.quote_hash,
            "mode": self.mode,
            "stages": [stage.to_dict() for stage in self.stages],
            "total": {
                "prompt_tokens": sum(s.total("prompt_tokens") for s in self.stages),
                "completion_tokens": sum(s.total("completion_tokens") for s in self.stages),
                "trained_tokens": sum(s.total("trained_tokens") for s in self.stages),
                "reasoning_tokens": sum(s.total("reasoning_tokens") for s in self.stages),
                "max_completion_tokens": sum(s.total("max_completion_tokens") for s in self.stages),
                "cost_micro_usd": self.total("cost_micro_usd"),
                "batch_cost_micro_usd": self.total("batch_cost_micro_usd"),
                "max_cost_micro_usd": self.total("upper_cost_micro_usd"),
                "max_batch_cost_micro_usd": sum(s.total("max_batch_cost_micro_usd") for s in self.stages),
                "cost_usd": format_usd(self.total("cost_micro_usd")),
                "batch_cost_usd": format_usd(self.total("batch_cost_micro_usd")),
                "max_cost_usd": format_usd(self.total("upper_cost_micro_usd")),
            },
            "reasoning": list(self.reasoning),
            "rows": self.rows,
            "prices": self.prices,
            "notes": list(self.notes),
        }


def user_prompt_tokens(prepared: PreparedRun, rows: Sequence[PreparedRow], model: str) -> np.ndarray:
    """Exact tokens of each row's rendered user prompt for the model's encoding."""
    counter = PromptCounter(prepared.template, encoding_for_model(model))
    columns = [[row.fields[i] for row in rows] for i in range(len(prepared.template.fields))]
    return counter.count(columns, len(rows))


class _Pricing:
    """Per-model token figures of one run, memoized by encoding."""

    def __init__(self, prepared: PreparedRun, spec: RunSpec, prices: PriceTable, billing: Billing,
                 expected: Sequence[ReasoningExpectation] = ()) -> None:
        if billing.models:  # the trainer's lines for its student win over the table's
            prices = PriceTable({**prices.prices, **{price.model: price for price in billing.models}})
        self.prepared, self.spec, self.prices, self.billing = prepared, spec, prices, billing
        self.rows = [*prepared.train, *prepared.validation, *prepared.eval]
        self._position = {id(row): i for i, row in enumerate(self.rows)}
        self._user: dict[str, np.ndarray] = {}
        self._answers: dict[str, dict[str, int]] = {}
        self.used: dict[str, ModelPrice] = {}
        self.expected = {(e.model, e.effort): e for e in expected}
        self.answer = spec.answer_format(prepared.choices)
        self.reasoning: dict[tuple[str, str], dict[str, Any]] = {}  # (role, model) -> what the quote assumed

    def price(self, model: str) -> ModelPrice:
        found = self.used[model] = self.prices.get(model)
        return found

    def user_tokens(self, model: str, rows: Sequence[PreparedRow]) -> np.ndarray:
        encoding = encoding_name_for_model(model)
        if encoding not in self._user:
            self._user[encoding] = user_prompt_tokens(self.prepared, self.rows, model)
        return self._user[encoding][[self._position[id(row)] for row in rows]]

    def _answer_tokens(self, model: str, rows: Sequence[PreparedRow]) -> dict[str, int]:
        """Tokens of each answer that may be expected (a choice; a row's reference), by its text."""
        encoding = encoding_name_for_model(model)
        answers = self._answers.setdefault(encoding, {})
        texts = self.prepared.choices or [row.gold_label for row in rows if row.gold_label]
        for text in texts:
            if text not in answers:
                answers[text] = self.answer.tokens(text, model)
        return answers

    def longest(self, model: str) -> int:
        return self.answer.longest_tokens(model, self.spec.max_answer_tokens)

    def completion_tokens(self, model: str, rows: Sequence[PreparedRow]) -> int:
        """Expected: the gold answer's tokens where the row has one, else the longest answer (an upper bound)."""
        answers, longest = self._answer_tokens(model, rows), self.longest(model)
        return sum(answers.get(row.gold_label, longest) if row.gold_label else longest for row in rows)

    def inference(self, role: str, model: str, split: str, rows: Sequence[PreparedRow],
                  examples: ExampleTokens = ExampleTokens()) -> Line:
        overhead = count_chat_tokens(build_messages(self.spec, ""), model)
        prompts = self.user_tokens(model, rows) + overhead
        most = prompts + examples.most
        prompts = prompts + examples.expected
        prompt = int(prompts.sum())
        price = self.price(model)
        budget = budget_for(self.spec, self.prices, role, model, self.longest(model))
        self._check_window(model, price, rows, prompts, budget.max_completion_tokens)
        reasoning, status = self._reasoning(role, model, budget, len(rows))
        completion = self.completion_tokens(model, rows) + reasoning
        return Line(role, model, split, len(rows), prompt, completion, 0,
                    price.cost_micro_usd(prompt, completion), price.cost_micro_usd(prompt, completion, batch=True),
                    reasoning, budget.max_completion_tokens * len(rows),
                    price.requests_cost_micro_usd(most, budget.max_completion_tokens),
                    price.requests_cost_micro_usd(most, budget.max_completion_tokens, batch=True),
                    budget.effort, status)

    @staticmethod
    def _check_window(model: str, price: ModelPrice, rows: Sequence[PreparedRow], prompts: np.ndarray,
                      max_completion_tokens: int) -> None:
        """Refuse the stage when the longest row's request does not fit the model's context window."""
        if not rows:
            return
        longest = int(np.argmax(prompts))
        row = rows[longest]
        problem = too_long(model, price.facts, int(prompts[longest]), max_completion_tokens,
                           f"The prompt of row {row.row_index + 1:,} (the longest)")
        if problem:
            raise SpecError(f"{problem} Shorten the template or the system prompt, leave long columns out of the "
                            "template, or pick a model with a larger window.")

    def _reasoning(self, role: str, model: str, budget: AnswerBudget, rows: int) -> tuple[int, str]:
        """Expected reasoning tokens of `rows` answers and how they are known: none (the model does not reason
        at this effort, or is asked nothing), measured (by a pilot) or not measured (then 0: the answers only)."""
        if budget.effort in (None, "none") or not rows:
            return 0, "none"
        measured = self.expected.get((model, budget.effort))
        self.reasoning[(role, model)] = {
            "role": role, "model": model, "effort": budget.effort,
            "reasoning_allowance_tokens": budget.reasoning_allowance_tokens,
            "max_completion_tokens": budget.max_completion_tokens, "max_answer_tokens": budget.max_answer_tokens,
            "measured": measured is not None, **(measured.to_dict() if measured else {}),
            "text": _reasoning_note(model, budget, measured),
        }
        if measured is None:
            return 0, "not measured"
        return round(measured.mean_tokens * rows), "measured"

    def training(self) -> Stage:
        model, rows = self.spec.student, self.prepared.train
        overhead = count_chat_tokens(training_example(self.spec, "", ""), model)
        file_tokens = (int(self.user_tokens(model, rows).sum()) + overhead * len(rows)
                       + self.completion_tokens(model, rows))
        price = self.price(model)
        if self.spec.epochs == AUTO and self.billing.auto_epochs:
            epochs, epochs_range = default_epochs(len(rows)), (MIN_DEFAULT_EPOCHS, MAX_DEFAULT_EPOCHS)
            max_cost = price.training_cost_micro_usd(file_tokens * MAX_DEFAULT_EPOCHS)
        else:  # epochs set, or a trainer that takes the number the bot sends: the cost is exactly that
            epochs = default_epochs(len(rows)) if self.spec.epochs == AUTO else int(self.spec.epochs)
            epochs_range, max_cost = None, price.training_cost_micro_usd(file_tokens * epochs)
        cost = price.training_cost_micro_usd(file_tokens * epochs)
        line = Line("student", model, "train", len(rows), 0, 0, file_tokens * epochs, cost, cost,
                    max_cost_micro_usd=max_cost, max_batch_cost_micro_usd=max_cost)
        return Stage(TRAIN, (line,), file_tokens, epochs, epochs_range)

    def judge(self) -> Line | None:
        """The model graders' judge on the eval split (bot/evaluate/grading.py): score_model and label_model once per
        graded model and row, pairwise twice per student and row. Expected: each answer as long as the row's reference
        (or its budget without one) and JUDGE_EXPECTED_TOKENS of reply; the most: every answer at its budget and every
        reply at the judge's max_completion_tokens."""
        spec, rows = self.spec, self.prepared.eval
        judged = [name for name in spec.grader_names if family(name) in JUDGED]
        if not judged or (spec.task == "classify" and spec.graders is None) or not rows:
            return None
        model, labelled = spec.judge_model, any(row.gold_label for row in rows)
        price = self.price(model)
        budget = answer_budget(model, price, answer_tokens=JUDGE_ANSWER_TOKENS)
        encoding = encoding_for_model(model)
        user = self.user_tokens(model, rows)
        references = np.array([len(encoding.encode_ordinary(r.gold_label)) if r.gold_label else 0 for r in rows])
        expected_answer = np.where(references > 0, references, self.longest(spec.student))
        longest = self.longest(spec.student)
        prompts, most = [], []
        for name in judged:
            if family(name) == "pairwise":
                overhead = count_chat_tokens(Pairwise.messages(Sample("", "" if labelled else None, ""), "", "ab"),
                                             model)
                base = overhead + user + references
                prompts += [base + 2 * expected_answer] * 4  # two students, two orders each
                most += [base + 2 * longest] * 4
            else:
                grader = grader_for(name, spec.judge_settings())
                overhead = count_chat_tokens(grader.messages(Sample("", "", "")), model)
                reference = references if labelled else expected_answer
                for _ in range(3 if labelled else 2):
                    prompts.append(overhead + user + reference + expected_answer)
                    most.append(overhead + user + reference + longest)
        prompt_tokens = np.concatenate(prompts)
        max_prompts = np.concatenate(most)
        prompt, completion = int(prompt_tokens.sum()), JUDGE_EXPECTED_TOKENS * len(prompt_tokens)
        return Line("judge", model, "eval", len(prompt_tokens), prompt, completion, 0,
                    price.cost_micro_usd(prompt, completion), price.cost_micro_usd(prompt, completion, batch=True),
                    0, budget.max_completion_tokens * len(prompt_tokens),
                    price.requests_cost_micro_usd(max_prompts, budget.max_completion_tokens),
                    price.requests_cost_micro_usd(max_prompts, budget.max_completion_tokens, batch=True),
                    budget.effort, "not measured" if budget.effort not in (None, "none") else "none")

    def grader_embedding(self) -> Line | None:
        """The cosine grader's embeddings on the eval split (bot/evaluate/grading.py): each reference once and each
        graded answer; expected with answers as long as their references, at most at their budget. Input tokens only."""
        spec, rows = self.spec, self.prepared.eval
        if not any(family(name) == "cosine" for name in spec.grader_names) or not rows or (
                spec.task == "classify" and spec.graders is None):
            return None
        encoding = encoding_for_model(EMBEDDING_MODEL)
        references = [len(encoding.encode_ordinary(r.gold_label)) if r.gold_label else 0 for r in rows]
        labelled = any(references)
        roles = 3 if labelled else 2
        longest = self.longest(spec.student)
        expected = sum(references) + roles * sum(t or longest for t in references)
        most = (sum(references) if labelled else len(rows) * longest) + roles * len(rows) * longest
        price = self.price(EMBEDDING_MODEL)
        cost, max_cost = price.cost_micro_usd(expected, 0), price.cost_micro_usd(most, 0)
        return Line("embedding", EMBEDDING_MODEL, "eval", len(rows) * (roles + 1), expected, 0, 0, cost, cost,
                    max_cost_micro_usd=max_cost, max_batch_cost_micro_usd=max_cost)

    def examples(self, model: str, k: int) -> ExampleTokens:
        """What k of the train rows add to a prompt of `model` as solved examples (a user turn with the row, an
        assistant turn with its answer: the gold label's, else the longest choice's)."""
        rows = self.prepared.train
        if not k or not rows:
            return ExampleTokens()
        pair = count_chat_tokens([{"role": "user", "content": ""}, {"role": "assistant", "content": ""}], model)
        answers, longest = self._answer_tokens(model, rows), self.longest(model)
        sizes = (self.user_tokens(model, rows) + (pair - REPLY_PRIMING)
                 + np.array([answers.get(row.gold_label, longest) if row.gold_label else longest for row in rows]))
        k = min(k, len(rows))
        return ExampleTokens(round(k * float(sizes.mean())), int(np.sort(sizes)[-k:].sum()))

    def embedding(self, model: str, split: str, rows: Sequence[PreparedRow]) -> Line:
        """Embedding the rows' prompts, in the requests bot/collect/embeddings.py makes (each rounded up as it
        reserves)."""
        price = self.price(model)
        tokens = self.user_tokens(model, rows)
        cost = sum(price.cost_micro_usd(int(tokens[batch].sum()), 0) for batch in plan_batches(tokens.tolist()))
        # Embedded live whatever the run's mode: the Batch column is the same.
        return Line("embedding", model, split, len(rows), int(tokens.sum()), cost_micro_usd=cost,
                    batch_cost_micro_usd=cost, max_cost_micro_usd=cost, max_batch_cost_micro_usd=cost)

    def hosting(self, hosting: Hosting, requests: int) -> Line:
        minutes = hosting.minutes(requests)
        cost = hosting.cost_micro_usd(minutes)  # per minute of the hardware: no Batch discount
        return Line("hosting", hosting.hardware, "eval", requests, cost_micro_usd=cost, batch_cost_micro_usd=cost,
                    minutes=minutes, max_cost_micro_usd=cost, max_batch_cost_micro_usd=cost)

def _reasoning_note(model: str, budget: AnswerBudget, measured: ReasoningExpectation | None) -> str:
    head = f"{model} reasons at effort {budget.effort}"
    bound = f"{budget.max_completion_tokens:,} completion tokens per answer (max_completion_tokens"
    bound += ", set by max_answer_tokens)" if budget.max_answer_tokens else (
        f": the answer and {budget.reasoning_allowance_tokens:,} reasoning tokens)")
    if measured is not None:
        return f"{head}: {measured.describe()}. The most it can cost counts {bound}."
    return (f"{head}: reasoning is not measured yet, so the expected cost counts the answers only; the most it can "
            f"cost counts {bound}. A pilot measures it on 20 of the run's own train rows, kept as their answers "
            "(`/distill pilot NAME`, or `distill-bot estimate --pilot 20`).")


def fixed_epochs_note(spec: RunSpec, billing: Billing, epochs: int, examples: int) -> list[str]:
    """The epochs the bot sends for "auto" to a trainer without it (the train stage's figure rests on them)."""
    if spec.epochs != AUTO or billing.auto_epochs:
        return []
    return [f"epochs=auto: {billing.trainer.capitalize()} has no automatic choice of epochs, so the bot sends "
            f"n_epochs={epochs} (its rule for {examples:,} training examples: 3 passes, more for a small file, "
            "fewer for a big one); the train stage costs exactly that. Set epochs=N to choose."]


def estimate(prepared: PreparedRun, spec: RunSpec, prices: PriceTable, billing: Billing | None = None,
             expected: Sequence[ReasoningExpectation] = (), teacher_imported: bool = False) -> Quote:
    """The quote of every stage: collect (teacher on train+validation+eval, base student on eval), train,
    evaluate (the fine-tuned student on eval, and the deployment that serves it when the trainer needs one).
    `billing` is how spec.trainer bills (bot.trainers.billing_for); None is OpenAI's way. `expected` holds what
    pilots measured of a model's reasoning. With `teacher_imported` the data carries the teacher's answers
    (bot/data/imports.py): the teacher is asked nothing."""
    billing = billing or Billing()
    if billing.trainer != spec.trainer:
        raise ValueError(f"billing of trainer {billing.trainer!r} given for a run trained at {spec.trainer!r}")
    pricing = _Pricing(prepared, spec, prices, billing, expected)
    teacher_rows = [] if teacher_imported else pricing.rows
    collect = Stage(COLLECT, (
        pricing.inference("teacher", spec.teacher, "train+eval", teacher_rows),
        pricing.inference("student", spec.student, "eval", prepared.eval),
    ))
    if billing.in_context:
        train, evaluate_lines = _in_context_stages(pricing)
    else:
        train = pricing.training()  # before evaluate: "cannot be fine-tuned" says more than "no ft: price"
        distilled = f"ft:{spec.student}"
        evaluate_lines = [pricing.inference("distilled", distilled, "eval", prepared.eval)]
    judge = pricing.judge()
    evaluate_lines += [line for line in (judge, pricing.grader_embedding()) if line is not None]
    if billing.hosting is not None:
        evaluate_lines.append(pricing.hosting(billing.hosting, len(prepared.eval)))
    evaluate = Stage(EVALUATE, tuple(evaluate_lines))
    stages = (collect, train, evaluate)
    notes = [entry["text"] for entry in pricing.reasoning.values()]
    if teacher_imported:
        notes.append("The teacher's answers come with the data (a JSONL file or stored completions): the teacher "
                     "line is empty, and collecting pays only for the base student's answers on the eval split.")
    notes += [f"{model}: {price.note}" for model, price in pricing.used.items() if price.note]
    notes += fixed_epochs_note(spec, billing, train.epochs or 0, len(prepared.train))
    if judge is not None:
        notes.append(f"The model graders' judge ({judge.model}) answers {judge.rows:,} requests in the evaluate stage "
                     f"({', '.join(n for n in spec.grader_names if family(n) in JUDGED)}); its replies are expected at "
                     f"{JUDGE_EXPECTED_TOKENS} tokens, and the most counts each at its max_completion_tokens.")
    student = pricing.price(spec.student)
    if billing.in_context:
        notes.append(in_context_note(spec, len(prepared.train), evaluate.lines[0]))
    elif student.training_minimum_applies(train.total("trained_tokens")):
        notes.append(f"{spec.student}: training is charged at least {format_usd(student.training_minimum_micro_usd)} "
                     "per job, more than this file's tokens cost: the train stage is that minimum.")
    if billing.hosting is not None:
        notes.append(billing.hosting.explain(len(prepared.eval)))
    if spec.training_data == "match_gold":
        notes.append("training_data=match_gold trains only on answers equal to the label; this counts every train row.")
    if spec.gold_column is None and spec.task == "classify":
        notes.append("No label column: completion tokens assume the longest choice (an upper bound).")
    elif spec.gold_column is None:
        notes.append(f"No reference column: each answer is counted at its budget of {pricing.longest(spec.teacher):,} "
                     "tokens (an upper bound; set max_answer_tokens to bound it closer).")
    elif spec.task != "classify":
        default = "" if spec.max_answer_tokens else " by default"
        notes.append(f"{spec.task.capitalize()}: answers are expected as long as the references in "
                     f"'{spec.reference}'; the most counts each at max_completion_tokens "
                     f"({pricing.longest(spec.teacher):,} answer tokens{default}, plus any reasoning allowance).")
    used = {model: price.to_dict() for model, price in pricing.used.items()}
    if billing.hosting is not None:
        used[f"dedicated:{billing.hosting.hardware}"] = billing.hosting.price_entry()
    digest = _quote_hash(spec, stages, used)
    return Quote(stages, spec.mode, prepared.to_dict(), used, tuple(notes), digest,
                 tuple(pricing.reasoning.values()))


def _in_context_stages(pricing: _Pricing) -> tuple[Stage, list[Line]]:
    """trainer=dicl: the train stage embeds the train rows' inputs; the evaluate stage is the base student with k
    examples in each prompt, and each eval row's query embedded."""
    spec, prepared = pricing.spec, pricing.prepared
    examples = pricing.examples(spec.student, spec.k)
    lines = [pricing.inference("distilled", spec.student, "eval", prepared.eval, examples)]
    if not spec.k or not prepared.train:
        return Stage(TRAIN, ()), lines
    lines.append(pricing.embedding(spec.embedding_model, "eval", prepared.eval))
    return Stage(TRAIN, (pricing.embedding(spec.embedding_model, "train", prepared.train),)), lines


def in_context_note(spec: RunSpec, examples: int, distilled: Line) -> str:
    """What trainer=dicl's stages are, in words, with the prompt tokens its examples add."""
    if not spec.k or not examples:
        return (f"trainer=dicl with k=0 fine-tunes nothing and adds no example: the distilled model is {spec.student} "
                "as the base student asks it, whose answers are reused for free.")
    k = min(spec.k, examples)
    return (f"trainer=dicl fine-tunes nothing: the train stage embeds the inputs of {examples:,} teacher answers "
            f"with {spec.embedding_model}, and at answer time {spec.student} gets the {k} nearest of them (cosine) as "
            f"solved examples before each eval row, which embeds its query first: {distilled.prompt_tokens:,} prompt "
            f"tokens for {distilled.rows:,} answers, the examples included (at most the {k} longest each).")


def _quote_hash(spec: RunSpec, stages: Sequence[Stage], prices: Mapping[str, Any]) -> str:
    payload = {
        "spec": spec.to_dict(),
        "stages": [
            {"name": s.name, "epochs": s.epochs, "file": s.training_file_tokens,
             "lines": [[x.model, x.rows, x.prompt_tokens, x.completion_tokens, x.trained_tokens, x.minutes,
                        x.max_completion_tokens, x.max_cost_micro_usd] for x in s.lines]}
            for s in stages
        ],
        "prices": prices,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


@dataclass(frozen=True)
class StageQuote:
    """What a spending stage will cost: the estimate to show and the most it can cost (the cap to approve)."""

    stage: str
    quote_hash: str
    estimate_micro_usd: int
    max_micro_usd: int
    detail: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"stage": self.stage, "quote_hash": self.quote_hash, "estimate_micro_usd": self.estimate_micro_usd,
                "max_micro_usd": self.max_micro_usd, **self.detail}
