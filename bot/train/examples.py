"""The distillation training file: the teacher's answers on the train split as chat examples, checked the way
OpenAI checks an uploaded file, counted exactly, and priced.

Each example is the request the teacher answered (system prompt, rendered row) followed by the teacher's
answer as the assistant turn (`prompts.training_example`). Only valid teacher answers are used; with
`training_data=match_gold`, a row whose gold label is known is used only when the teacher found it. The
validation rows (`validation_size`, carved from the train split by bot/data/splits.py) make the validation file
under the same rules.

The quote of training and evaluating the fine-tuned model comes from the run's estimate (bot/costs/quotes.py) on the
real file: the epochs (OpenAI's "auto" range, or the fixed number a trainer without "auto" is sent), the minimum charge
per job, and the dedicated deployment the eval needs where the trainer has one (`Billing`), priced once there.

`build_training_data` is CPU work (JSON and tokenizing every example): callers on the event loop use
`training_data_for_run`, which runs it in a thread.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bot.core.errors import DistillError
from bot.core.money import format_usd
from bot.costs.quotes import (
    EVALUATE,
    MAX_DEFAULT_EPOCHS,
    REPLY_PRIMING,
    TOKENS_PER_MESSAGE,
    TOKENS_PER_NAME,
    Billing,
    count_training_file_tokens,
    default_epochs,
    estimate,
    fixed_epochs_note,
)
from bot.data.splits import PreparedRow, PreparedRun
from bot.prices.table import PriceTable
from bot.spec.messages import training_example
from bot.spec.settings import AUTO, RunSpec
from bot.trainers.base import Message, Trainer, TrainingLimits
from storage import Storage
from storage.completions import Completion

TEACHER = "teacher"
ROLES = ("system", "user", "assistant")

# Why a train or validation row is not in the file.
NO_ANSWER = "no teacher answer"
INVALID_ANSWER = "teacher answer not valid"
FAILED_REQUEST = "teacher request failed"
DISAGREES = "teacher answer differs from the label"


class TrainingFileError(DistillError):
    """The training file breaks a rule the provider enforces, or too few examples are usable."""


@dataclass(frozen=True)
class TrainingQuote:
    """What training and then evaluating the fine-tuned model will cost, in micro-USD."""

    model: str
    examples: int
    training_file_tokens: int
    epochs: int
    epochs_auto: bool  # epochs is what OpenAI's "auto" rule is expected to pick (False: the bot picks and sends them)
    trained_tokens: int  # training_file_tokens x epochs: what the trainer bills
    training_cost_micro_usd: int
    max_training_cost_micro_usd: int  # at the most epochs "auto" may pick; equal to the cost when the bot sends them
    eval_model: str
    eval_rows: int
    eval_prompt_tokens: int
    eval_completion_tokens: int
    eval_cost_micro_usd: int  # the fine-tuned model's tokens on the eval split, and the model graders' judge
    quote_hash: str  # sha256 over the files, the counts and the prices: an approval binds to it
    hosting_micro_usd: int = 0  # the dedicated deployment serving it for the eval (the estimate's "hosting" line)
    hosting_minutes: int = 0
    hosting_hardware: str | None = None

    @property
    def total_micro_usd(self) -> int:
        return self.training_cost_micro_usd + self.eval_cost_micro_usd + self.hosting_micro_usd

    @property
    def max_total_micro_usd(self) -> int:
        return self.max_training_cost_micro_usd + self.eval_cost_micro_usd + self.hosting_micro_usd

    def to_dict(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        data.update(
            total_micro_usd=self.total_micro_usd,
            max_total_micro_usd=self.max_total_micro_usd,
            total_usd=format_usd(self.total_micro_usd),
            training_cost_usd=format_usd(self.training_cost_micro_usd),
            eval_cost_usd=format_usd(self.eval_cost_micro_usd),
            hosting_usd=format_usd(self.hosting_micro_usd),
        )
        return data


@dataclass(frozen=True)
class TrainingData:
    training_file: bytes
    validation_file: bytes | None
    examples: int
    validation_examples: int
    left_out: dict[str, int]  # reason -> train and validation rows not in the files
    training_file_tokens: int
    quote: TrainingQuote
    notes: tuple[str, ...] = ()

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.training_file).hexdigest()

    def to_dict(self) -> dict[str, Any]:
        """The summary a Slack message or the stored quote shows (no file contents)."""
        return {
            "examples": self.examples,
            "validation_examples": self.validation_examples,
            "left_out": dict(self.left_out),
            "training_file_tokens": self.training_file_tokens,
            "training_file_bytes": len(self.training_file),
            "training_file_sha256": self.sha256,
            "quote": self.quote.to_dict(),
            "notes": list(self.notes),
        }


async def training_data_for_run(storage: Storage, run_id: int, spec: RunSpec, prepared: PreparedRun,
                                prices: PriceTable, trainer: Trainer, billing: Billing | None = None) -> TrainingData:
    """The files for the run from the teacher answers stored so far (built off the event loop)."""
    answers = await storage.completions.for_run(run_id, role=TEACHER)
    return await asyncio.to_thread(build_training_data, spec, prepared, answers, prices, trainer, billing)


def build_training_data(spec: RunSpec, prepared: PreparedRun, teacher_answers: Sequence[Completion],
                        prices: PriceTable, trainer: Trainer, billing: Billing | None = None) -> TrainingData:
    """`billing` is how the trainer bills (trainer.billing); None is OpenAI's way."""
    """Select, encode, check, count and price the training (and validation) examples."""
    # Only the train and validation splits: a re-evaluation's or a watch's answers are the run's too, under their own.
    by_row = {c.row_index: c for c in teacher_answers if c.role == TEACHER and c.split in ("train", "validation")}
    left_out: Counter[str] = Counter()
    train, train_rows = _examples(spec, prepared.train, by_row, left_out)
    validation, validation_rows = _examples(spec, prepared.validation, by_row, left_out)
    limits = trainer.limits(spec.student)
    if len(train) < limits.min_examples:
        raise TrainingFileError(_too_few(len(train), limits.min_examples, left_out, spec))
    training_file = trainer.training_file(train)
    checked = validate_training_file(training_file, spec.student, limits, rows=train_rows)
    notes: list[str] = []
    validation_file = None
    if validation:
        validation_file = trainer.training_file(validation)
        validate_training_file(validation_file, spec.student, limits, min_examples=1, what="validation file",
                               rows=validation_rows)
    elif prepared.validation:
        notes.append("No validation row has a usable teacher answer, so the job runs without a validation file.")
    file_tokens = count_training_file_tokens(checked, spec.student)
    billing = billing or Billing()
    quote = _quote(spec, prepared, prices, billing, len(train), file_tokens, [training_file, validation_file or b""])
    if quote.epochs_auto:
        notes.append(
            f"epochs=auto: OpenAI is expected to pick {quote.epochs} epochs for {len(train)} examples; it may pick "
            f"up to {MAX_DEFAULT_EPOCHS}, which would cost {format_usd(quote.max_training_cost_micro_usd)}."
        )
    notes += fixed_epochs_note(spec, billing, quote.epochs, len(train))  # the trainer's quote explains the rest
    if billing.hosting is not None:
        notes.append(billing.hosting.explain(quote.eval_rows))
    return TrainingData(training_file, validation_file, len(train), len(validation), dict(left_out), file_tokens,
                        quote, tuple(notes))


def _examples(spec: RunSpec, rows: Sequence[PreparedRow], answers: Mapping[int, Completion],
              left_out: Counter[str]) -> tuple[list[list[dict[str, str]]], list[int]]:
    """The examples to train on and the dataset row of each; the others are counted in `left_out` by reason."""
    usable = usable_answers(spec, rows, answers, left_out)
    answer_format = spec.answer_format()
    return ([training_example(spec, row.user_prompt, answer_format.training_content(label)) for row, label in usable],
            [row.row_index for row, _ in usable])


def usable_answers(spec: RunSpec, rows: Sequence[PreparedRow], answers: Mapping[int, Completion],
                   left_out: Counter[str]) -> list[tuple[PreparedRow, str]]:
    """The rows whose teacher answer the student may learn from, with that answer's label; the others are
    counted in `left_out` by reason. `answers`: the teacher's, by dataset row."""
    match_gold = spec.training_data == "match_gold"
    usable = []
    for row in rows:
        answer = answers.get(row.row_index)
        reason = None
        if answer is None:
            reason = NO_ANSWER
        elif answer.status == "failed":
            reason = FAILED_REQUEST
        elif answer.status != "ok" or not answer.parsed_label:
            reason = INVALID_ANSWER
        elif match_gold and row.gold_label is not None and answer.parsed_label != row.gold_label:
            reason = DISAGREES
        if reason is None:
            usable.append((row, answer.parsed_label))
        else:
            left_out[reason] += 1
    return usable


def _too_few(usable: int, needed: int, left_out: Mapping[str, int], spec: RunSpec) -> str:
    why = "; ".join(f"{n} {reason}" for reason, n in left_out.items()) or "no train rows"
    advice = "Raise train so more rows are labelled"
    if left_out.get(DISAGREES):
        advice = "Use training_data=all, or raise train"
    return (f"Only {usable} training examples are usable, and fine-tuning needs at least {needed}. "
            f"Left out: {why}. {advice}.")


def validate_training_file(content: bytes, model: str, limits: TrainingLimits, *, min_examples: int | None = None,
                           what: str = "training file", rows: Sequence[int] = ()) -> list[list[Message]]:
    """Check a chat JSONL file as OpenAI does before training and return its examples.

    Rules from OpenAI's fine-tuning guide (platform.openai.com/docs/guides/supervised-fine-tuning, "Preparing
    your dataset" and "Token limits"): UTF-8 JSON, one object per line with a non-empty `messages` list;
    roles system, user or assistant with text content; the last message from the assistant; at least
    `limits.min_examples` examples; each example within `limits.max_example_tokens`. `rows` names the dataset
    row of each line, for the messages.
    """
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError:
        raise TrainingFileError(f"The {what} is not UTF-8 text. Save it as UTF-8 JSONL.") from None
    examples = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            source = f" (row {rows[number - 1]} of the dataset)" if number <= len(rows) else ""
            examples.append(_checked_example(line, f"Line {number} of the {what}{source}", model, limits))
    needed = limits.min_examples if min_examples is None else min_examples
    if len(examples) < needed:
        raise TrainingFileError(
            f"The {what} has {len(examples)} example(s); fine-tuning needs at least {needed}. Add examples."
        )
    return examples


def _checked_example(line: str, where: str, model: str, limits: TrainingLimits) -> list[Message]:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise TrainingFileError(f"{where} is not valid JSON ({exc.msg}). Write one JSON object per line.") from None
    messages = record.get("messages") if isinstance(record, dict) else None
    if not isinstance(messages, list) or not messages:
        raise TrainingFileError(f'{where} needs a non-empty "messages" list: {{"messages": [{{"role": "user", '
                                '"content": "..."}, {"role": "assistant", "content": "..."}]}.')
    for position, message in enumerate(messages, start=1):
        role = message.get("role") if isinstance(message, dict) else None
        if role not in ROLES:
            raise TrainingFileError(f"{where}, message {position}: role {role!r} is not one of {', '.join(ROLES)}.")
        if not isinstance(message.get("content"), str):
            raise TrainingFileError(f'{where}, message {position}: "content" must be text.')
    if messages[-1]["role"] != "assistant":
        raise TrainingFileError(f"{where}: the last message is from the {messages[-1]['role']}; it must be the "
                                "assistant's answer the model should learn.")
    # A token is at least one byte of UTF-8, so only a line this long can be over the limit: count just those.
    overhead = REPLY_PRIMING + (TOKENS_PER_MESSAGE + TOKENS_PER_NAME) * len(messages)
    if len(line.encode("utf-8")) + overhead > limits.max_example_tokens:
        tokens = count_training_file_tokens([messages], model)
        if tokens > limits.max_example_tokens:
            raise TrainingFileError(f"{where} has {tokens:,} tokens; {model} takes at most "
                                    f"{limits.max_example_tokens:,} per example. Shorten the template or the row.")
    return messages


def _quote(spec: RunSpec, prepared: PreparedRun, prices: PriceTable, billing: Billing, examples: int,
           file_tokens: int, files: Sequence[bytes]) -> TrainingQuote:
    price = prices.get(spec.student)
    auto = spec.epochs == AUTO and billing.auto_epochs
    epochs = default_epochs(examples) if spec.epochs == AUTO else int(spec.epochs)
    training_cost = price.training_cost_micro_usd(file_tokens * epochs)
    max_cost = price.training_cost_micro_usd(file_tokens * MAX_DEFAULT_EPOCHS) if auto else training_cost
    # The fine-tuned model answers the eval split as the run's estimate counted it (same prompts and answers), from
    # the deployment the estimate priced in its evaluate stage when the trainer needs one.
    run_estimate = estimate(prepared, spec, prices, billing)
    lines = run_estimate.stage(EVALUATE).lines
    line = next(x for x in lines if x.role == "distilled")
    hosting = [x for x in lines if x.role == "hosting"]
    judged = sum(x.batch_cost_micro_usd if spec.mode == "batch" else x.cost_micro_usd for x in lines
                 if x.role in ("judge", "embedding"))
    eval_cost = (line.batch_cost_micro_usd if spec.mode == "batch" else line.cost_micro_usd) + judged
    used = {spec.student: price.to_dict(), line.model: run_estimate.prices[line.model]}
    if hosting:
        used[f"dedicated:{hosting[0].model}"] = run_estimate.prices[f"dedicated:{hosting[0].model}"]
    digest = hashlib.sha256(json.dumps({
        "files": [hashlib.sha256(f).hexdigest() for f in files], "spec": spec.to_dict(), "epochs": epochs,
        "file_tokens": file_tokens, "eval": [line.prompt_tokens, line.completion_tokens],
        "hosting": [[h.model, h.minutes, h.cost_micro_usd] for h in hosting], "prices": used,
    }, sort_keys=True).encode()).hexdigest()
    return TrainingQuote(
        model=spec.student, examples=examples, training_file_tokens=file_tokens, epochs=epochs, epochs_auto=auto,
        trained_tokens=file_tokens * epochs, training_cost_micro_usd=training_cost,
        max_training_cost_micro_usd=max_cost, eval_model=line.model, eval_rows=line.rows,
        eval_prompt_tokens=line.prompt_tokens, eval_completion_tokens=line.completion_tokens,
        eval_cost_micro_usd=eval_cost, quote_hash=digest,
        hosting_micro_usd=sum(h.cost_micro_usd for h in hosting), hosting_minutes=sum(h.minutes for h in hosting),
        hosting_hardware=hosting[0].model if hosting else None,
    )
