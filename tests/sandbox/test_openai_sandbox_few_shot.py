"""The sandbox's chat models learn from solved examples in their prompt: the nearest ones (by the sandbox's own
embeddings) make the student better, unrelated ones do not. Measured through the real SDK on the bundled tickets."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bot.data.datasets import load_csv
from bot.data.splits import prepare
from bot.examples import TICKETS_CSV
from bot.spec.settings import RunSpec
from sandbox.openai.few_shot import SIMILARITY_FLOOR, example_votes, solved_examples
from tests.sandbox.openai_sandbox_support import classification_format, client

STUDENT, TEACHER = "gpt-6-luna", "gpt-6.2-sol"
K = 8


def test_solved_examples_are_the_answered_user_turns_before_the_row():
    messages = [{"role": "system", "content": "Sort tickets."},
                {"role": "user", "content": "printer jams"}, {"role": "assistant", "content": '{"label":"Hardware"}'},
                {"role": "user", "content": "vpn drops"}, {"role": "assistant", "content": "Network"},
                {"role": "user", "content": "the row"}]
    assert solved_examples(messages) == [("printer jams", "Hardware"), ("vpn drops", "Network")]
    assert solved_examples(messages[-1:]) == []


def test_only_similar_examples_vote_and_words_every_example_shares_are_no_evidence():
    template = "Ticket of the helpdesk, sort it: {}"
    examples = [(template.format("the office printer jams on every page"), "Hardware"),
                (template.format("wifi keeps dropping in the meeting room"), "Network"),
                (template.format("invoice shows a double payment"), "Billing")]
    votes = example_votes(template.format("printer jams again on page two"), examples,
                          ["Hardware", "Network", "Billing"], lambda word: True)
    assert votes[0] > 0 and votes[1] == votes[2] == 0
    unrelated = example_votes(template.format("keyboard keys stick"), examples, ["Hardware", "Network", "Billing"],
                              lambda word: True)
    assert unrelated == [0, 0, 0]  # the template alone would have made every example look alike
    assert 0 < SIMILARITY_FLOOR < 1


@pytest.fixture(scope="module")
def tickets():
    loaded = load_csv(TICKETS_CSV.read_bytes(), filename="it-tickets.csv", max_bytes=10**8, max_rows=10**6)
    return prepare(RunSpec(label="category", train_size=300, eval_size=120), loaded.columns,
                   loaded.rows_by_index())


async def test_the_nearest_teacher_examples_make_the_student_better_and_unrelated_ones_do_not(
        openai_sandbox, tickets):
    choices = list(tickets.choices)
    fmt = classification_format(choices)

    async def answer(sdk, model: str, examples, row) -> str:
        messages = [m for text, label in examples for m in (
            {"role": "user", "content": text}, {"role": "assistant", "content": json.dumps({"label": label})})]
        reply = await sdk.chat.completions.create(model=model, response_format=fmt, reasoning_effort="none"
                                                  if model == STUDENT else "low",
                                                  messages=[*messages, {"role": "user", "content": row.user_prompt}])
        return json.loads(reply.choices[0].message.content)["label"]

    async with client(openai_sandbox) as sdk:
        teacher = [await answer(sdk, TEACHER, [], row) for row in tickets.train]
        vectors = {}
        for split in ("train", "eval"):
            rows = getattr(tickets, split)
            embedded = await sdk.embeddings.create(model="text-embedding-3-small", input=[r.user_prompt for r in rows])
            vectors[split] = np.array([item.embedding for item in embedded.data])
        similarity = vectors["eval"] @ vectors["train"].T
        results = {}
        for name, pick in (("none", lambda s: []), ("nearest", lambda s: np.argsort(s)[-K:]),
                           ("farthest", lambda s: np.argsort(s)[:K])):
            answers = [await answer(sdk, STUDENT, [(tickets.train[j].user_prompt, teacher[j]) for j in pick(s)], row)
                       for row, s in zip(tickets.eval, similarity, strict=True)]
            results[name] = np.mean([a == row.gold_label for a, row in zip(answers, tickets.eval, strict=True)])
    assert results["nearest"] >= results["none"] + 0.15  # 29% -> 56% when this was written
    assert abs(results["farthest"] - results["none"]) <= 0.03
