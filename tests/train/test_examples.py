"""The training file: which teacher answers become examples, OpenAI's file rules, exact tokens and the quote."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import pytest

from bot.core.config import Secret
from bot.data.splits import prepare
from bot.prices.table import PriceTable
from bot.prompts.encodings import encoding_for_model
from bot.prompts.templates import answer_json
from bot.spec.messages import training_example
from bot.spec.settings import RunSpec
from bot.train.examples import (
    DISAGREES,
    FAILED_REQUEST,
    INVALID_ANSWER,
    NO_ANSWER,
    TrainingFileError,
    build_training_data,
    training_data_for_run,
    validate_training_file,
)
from bot.trainers.base import TrainingLimits
from bot.trainers.openai import OpenAITrainer
from storage.completions import Completion
from tests.collect.helpers import CHOICES, SYSTEM, ticket_texts

STUDENT = "gpt-4o-mini-2024-07-18"
SPEC = RunSpec(label="category", template="{text}\nAnswer with one of: {choices}.", system=SYSTEM, min_per_label=1,
               train_size=24, eval_size=8, validation_size=4, teacher="gpt-4o", student=STUDENT, trainer="openai")


def dataset(count: int = 32) -> dict[int, dict[str, str]]:
    return {i: {"text": text, "category": CHOICES[i % len(CHOICES)]} for i, text in enumerate(ticket_texts(count))}


def answer(row_index: int, label: str | None, *, status: str = "ok", split: str = "train") -> Completion:
    return Completion(run_id=1, row_index=row_index, split=split, role="teacher", model="gpt-4o",
                      request_hash=f"h{row_index}", status=status, parsed_label=label if status == "ok" else None,
                      raw_output=json.dumps({"label": label}))


def other(label: str) -> str:
    return CHOICES[(CHOICES.index(label) + 1) % len(CHOICES)]


@pytest.fixture(scope="module")
def trainer():
    return OpenAITrainer(base_url="http://127.0.0.1:9/v1", api_key=Secret("sk-unused"))


@pytest.fixture(scope="module")
def prices():
    return PriceTable.load()


def lines(content: bytes) -> list[dict]:
    return [json.loads(line) for line in content.decode().splitlines()]


def test_examples_are_the_valid_teacher_answers_and_validation_rows_make_their_own_file(trainer, prices):
    prepared = prepare(SPEC, ["text", "category"], dataset())
    train, validation = prepared.train, prepared.validation
    assert len(train) == 20 and len(validation) == 4
    answers = [answer(r.row_index, r.gold_label) for r in train[:14]]
    answers += [answer(r.row_index, other(r.gold_label)) for r in train[14:17]]  # wrong, but valid answers
    answers += [answer(train[17].row_index, None, status="invalid"), answer(train[18].row_index, None, status="failed")]
    # train[19] was never answered; the validation rows may be stored under their own split name
    answers += [answer(r.row_index, r.gold_label, split="validation") for r in validation]
    # an eval answer for a train row index must never leak into the file
    answers.append(Completion(run_id=1, row_index=train[0].row_index, split="eval", role="teacher", model="gpt-4o",
                              request_hash="e", status="ok", parsed_label=other(train[0].gold_label)))

    data = build_training_data(SPEC, prepared, answers, prices, trainer)

    by_row = {c.row_index: c.parsed_label for c in answers if c.split != "eval"}
    expected = [{"messages": training_example(SPEC, r.user_prompt, answer_json(by_row[r.row_index]))}
                for r in train[:17]]
    assert lines(data.training_file) == expected
    assert lines(data.validation_file) == [
        {"messages": training_example(SPEC, r.user_prompt, answer_json(r.gold_label))} for r in validation]
    assert (data.examples, data.validation_examples) == (17, 4)
    assert data.left_out == {INVALID_ANSWER: 1, FAILED_REQUEST: 1, NO_ANSWER: 1}
    first_answer = json.dumps({"label": train[0].gold_label}, separators=(",", ":"))
    assert lines(data.training_file)[0]["messages"][-1] == {"role": "assistant", "content": first_answer}


def test_match_gold_keeps_only_answers_that_found_the_label(trainer, prices):
    spec = replace(SPEC, training_data="match_gold", validation_size=0)
    prepared = prepare(spec, ["text", "category"], dataset())
    answers = [answer(r.row_index, r.gold_label if i % 4 else other(r.gold_label))
               for i, r in enumerate(prepared.train)]
    data = build_training_data(spec, prepared, answers, prices, trainer)
    kept = [r for i, r in enumerate(prepared.train) if i % 4]
    assert lines(data.training_file) == [
        {"messages": training_example(spec, r.user_prompt, answer_json(r.gold_label))} for r in kept]
    assert data.left_out == {DISAGREES: len(prepared.train) - len(kept)}
    assert data.validation_file is None


def test_match_gold_keeps_answers_of_rows_without_a_label(trainer, prices):
    spec = replace(SPEC, label=None, choices=tuple(CHOICES), training_data="match_gold", validation_size=0)
    prepared = prepare(spec, ["text", "category"], dataset())
    answers = [answer(r.row_index, CHOICES[0]) for r in prepared.train]
    data = build_training_data(spec, prepared, answers, prices, trainer)
    assert data.examples == len(prepared.train) and data.left_out == {}


def test_too_few_usable_examples_names_the_reasons_and_the_fix(trainer, prices):
    spec = replace(SPEC, training_data="match_gold", validation_size=0)
    prepared = prepare(spec, ["text", "category"], dataset())
    answers = [answer(r.row_index, r.gold_label if i < 9 else other(r.gold_label))
               for i, r in enumerate(prepared.train)]
    with pytest.raises(TrainingFileError, match=r"Only 9 training examples.*at least 10.*15 teacher answer differs "
                                                r"from the label.*training_data=all"):
        build_training_data(spec, prepared, answers, prices, trainer)


def test_tokens_are_counted_exactly_and_the_quote_is_epochs_times_tokens_times_price(trainer, prices):
    prepared = prepare(SPEC, ["text", "category"], dataset())
    answers = [answer(r.row_index, r.gold_label) for r in [*prepared.train, *prepared.validation]]
    data = build_training_data(SPEC, prepared, answers, prices, trainer)
    encoding = encoding_for_model(STUDENT)

    def chat_tokens(messages):  # openai-cookbook How_to_count_tokens_with_tiktoken, written out here
        return 3 + sum(3 + len(encoding.encode(m["role"])) + len(encoding.encode(m["content"])) for m in messages)

    file_tokens = sum(chat_tokens(line["messages"]) for line in lines(data.training_file))
    assert data.training_file_tokens == data.quote.training_file_tokens == file_tokens
    quote = data.quote
    # 20 examples with epochs=auto: 20 x 3 = 60 < 100, so OpenAI's rule trains 100 // 20 = 5 epochs.
    assert (quote.epochs, quote.epochs_auto) == (5, True)
    assert quote.trained_tokens == file_tokens * 5
    # gpt-4o-mini-2024-07-18 trains at $3.00 per 1M tokens = 3 micro-USD per token.
    assert quote.training_cost_micro_usd == file_tokens * 5 * 3
    assert quote.max_training_cost_micro_usd == file_tokens * 25 * 3
    # The fine-tuned model then answers the 8 eval rows: $0.30 / $1.20 per 1M tokens in / out.
    prompt = sum(chat_tokens([{"role": "system", "content": SYSTEM}, {"role": "user", "content": r.user_prompt}])
                 for r in prepared.eval)
    completion = sum(len(encoding.encode(f'{{"label":"{r.gold_label}"}}')) for r in prepared.eval)
    assert (quote.eval_model, quote.eval_rows) == (f"ft:{STUDENT}", 8)
    assert (quote.eval_prompt_tokens, quote.eval_completion_tokens) == (prompt, completion)
    assert quote.eval_cost_micro_usd == math.ceil((prompt * 30 + completion * 120) / 100)
    assert quote.total_micro_usd == quote.training_cost_micro_usd + quote.eval_cost_micro_usd
    assert any("up to 25" in note for note in data.notes)


def test_epochs_set_by_hand_price_exactly_and_change_the_quote_hash(trainer, prices):
    prepared = prepare(SPEC, ["text", "category"], dataset())
    answers = [answer(r.row_index, r.gold_label) for r in prepared.train]
    auto = build_training_data(SPEC, prepared, answers, prices, trainer)
    spec = replace(SPEC, epochs=2)
    fixed = build_training_data(spec, prepared, answers, prices, trainer)
    assert (fixed.quote.epochs, fixed.quote.epochs_auto) == (2, False)
    # 2 epochs x 3 micro-USD per token; no range to cover when epochs are set by hand
    assert fixed.quote.max_training_cost_micro_usd == fixed.quote.training_cost_micro_usd
    assert fixed.quote.training_cost_micro_usd == fixed.training_file_tokens * 6
    assert fixed.quote.quote_hash != auto.quote.quote_hash
    assert build_training_data(spec, prepared, answers, prices, trainer).quote.quote_hash == fixed.quote.quote_hash


def _jsonl(records) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in records).encode()


GOOD = {"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "u"},
                     {"role": "assistant", "content": '{"label":"A"}'}]}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\xff\xfe not utf-8", "not UTF-8"),
        (_jsonl([GOOD] * 3) + b'{"messages": [}\n', "Line 4 of the training file is not valid JSON"),
        (_jsonl([{"prompt": "x"}] + [GOOD] * 10), 'Line 1 of the training file needs a non-empty "messages"'),
        (_jsonl([GOOD] * 10 + [{"messages": [{"role": "bot", "content": "x"}, {"role": "assistant", "content": "y"}]}]),
         "Line 11 of the training file, message 1: role 'bot' is not one of system, user, assistant"),
        (_jsonl([{"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": None}]}]),
         'message 2: "content" must be text'),
        (_jsonl([GOOD] * 10 + [{"messages": [{"role": "user", "content": "x"}]}]),
         "the last message is from the user; it must be the assistant's answer"),
        (_jsonl([GOOD] * 9), "has 9 example(s); fine-tuning needs at least 10"),
    ],
)
def test_validator_names_the_broken_rule(content, message):
    with pytest.raises(TrainingFileError) as caught:
        validate_training_file(content, STUDENT, TrainingLimits(10, 65_536))
    assert message in str(caught.value)


def test_validator_counts_long_examples_against_the_per_example_limit():
    short = {"messages": [{"role": "user", "content": "word " * 10}, {"role": "assistant", "content": "ok"}]}
    long = {"messages": [{"role": "user", "content": "word " * 200}, {"role": "assistant", "content": "ok"}]}
    limits = TrainingLimits(1, 100)
    assert len(validate_training_file(_jsonl([short] * 3), STUDENT, limits)) == 3
    with pytest.raises(TrainingFileError, match=r"Line 2 of the training file has 2\d\d tokens; .* at most 100"):
        validate_training_file(_jsonl([short, long]), STUDENT, limits)
    # the documented limits the OpenAI trainer applies
    trainer = OpenAITrainer(base_url="http://127.0.0.1:9/v1", api_key=Secret("sk-unused"))
    assert trainer.limits(STUDENT) == TrainingLimits(10, 65_536)
    assert trainer.limits("gpt-4.1-nano-2025-04-14") == TrainingLimits(10, 32_768)


async def test_built_from_the_stored_teacher_answers(storage, trainer, prices):
    run = await storage.runs.create(name="t", channel_id="C1", requester="U1", spec=SPEC.to_dict())
    prepared = prepare(SPEC, ["text", "category"], dataset())
    stored = [answer(r.row_index, r.gold_label) for r in prepared.train[:12]]
    await storage.completions.save_many([Completion(**{**c.__dict__, "run_id": run.id}) for c in stored])
    data = await training_data_for_run(storage, run.id, SPEC, prepared, prices, trainer)
    assert data.examples == 12 and data.left_out == {NO_ANSWER: len(prepared.train) - 12 + len(prepared.validation)}
    assert data.to_dict()["training_file_sha256"] == data.sha256


def test_an_example_over_the_token_limit_names_its_dataset_row(prices):
    class TightTrainer(OpenAITrainer):
        def limits(self, base_model: str) -> TrainingLimits:
            return TrainingLimits(10, 300)

    rows = dataset()
    prepared = prepare(SPEC, ["text", "category"], rows)
    long_row = prepared.train[3].row_index
    rows[long_row]["text"] = "a very long ticket " * 100
    prepared = prepare(SPEC, ["text", "category"], rows)
    answers = [answer(r.row_index, r.gold_label) for r in prepared.train]
    trainer = TightTrainer(base_url="http://127.0.0.1:9/v1", api_key=Secret("sk-unused"))
    with pytest.raises(TrainingFileError, match=rf"Line 4 of the training file \(row {long_row} of the dataset\) has "
                                                r"4\d\d tokens; gpt-4o-mini-2024-07-18 takes at most 300"):
        build_training_data(SPEC, prepared, answers, prices, trainer)
