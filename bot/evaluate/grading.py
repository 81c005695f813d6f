"""Grading the eval split: every grader of a run, on the answers of the teacher, the base student and the distilled
student.

Each answer is graded against its row's reference: the gold answer (the label, or the reference column) where the run
has one, else the teacher's own answer, which then is not graded itself. Deterministic graders run here and cost
nothing. Model graders (score_model, label_model, pairwise) ask the judge (`judge=`, by default the teacher): their
requests are `JudgeCall`s, sent through the same collection engine as every other answer (`judge_tasks`), so they are
rate-limited, reserved against the approved cap before they go, stored once (under the role
`judge:<grader>:<model role>`, pairwise `judge:pairwise:<model role>:<ab|ba>`) and never paid twice. `grade` reads
the stored judgments back. Pairwise compares each student (base and distilled) with the teacher, in both orders.
The cosine grader embeds each answer and its reference once (`embed_cosines`, bot/collect/embeddings.py, within the cap)
and stores the cosine as a judgment of role `judge:cosine:<model role>` carrying what its embeddings cost.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.collect.embeddings import Embedder, EmbeddingError, count_tokens
from bot.collect.engine import CollectRequest, CollectTask
from bot.core.errors import BudgetExceeded
from bot.costs.budget import Budget
from bot.costs.quotes import count_chat_tokens
from bot.data.splits import PreparedRow
from bot.evaluate.scores import BASE, DISTILLED, EVAL_SPLIT, TEACHER
from bot.graders import STORED, family, grader_for
from bot.graders.base import Grade, Sample, no_answer, ungraded
from bot.graders.embeddings import EMBEDDING_MODEL, cosine
from bot.graders.judges import JUDGE_ANSWER_TOKENS
from bot.graders.pairwise import ORDERS, Pairwise
from bot.prices.reasoning import answer_budget
from bot.prices.table import PriceTable
from bot.prompts.answers import AnswerFormat
from bot.spec.settings import RunSpec
from storage import Storage
from storage.completions import Completion

ROLES = (TEACHER, BASE, DISTILLED)
JUDGE = "judge"
NOT_JUDGED = "not judged (the judge's request failed or was never sent)"


def judge_role(grader: str, role: str, order: str | None = None) -> str:
    """The completions role a judgment is stored under."""
    return f"{JUDGE}:{grader}:{role}" + (f":{order}" if order else "")


def is_judgment(role: str) -> bool:
    return role.startswith(JUDGE + ":")


@dataclass(frozen=True)
class EvalAnswers:
    """The eval rows with each model's valid answer (None where it gave none)."""

    rows: list[PreparedRow]
    answers: dict[str, dict[int, str | None]]

    @property
    def labelled(self) -> bool:
        return any(row.gold_label is not None for row in self.rows)

    def reference(self, row: PreparedRow) -> str | None:
        if self.labelled:
            return row.gold_label
        return self.answers.get(TEACHER, {}).get(row.row_index)

    def graded_roles(self) -> list[str]:
        """The models graded: all that answered, but the teacher when its answers are the reference."""
        return [role for role in ROLES if role in self.answers and (self.labelled or role != TEACHER)]

    def sample(self, role: str, row: PreparedRow) -> Sample:
        return Sample(self.answers[role].get(row.row_index), self.reference(row), row.user_prompt)


def eval_answers(rows: Sequence[PreparedRow], completions: Sequence[Completion]) -> EvalAnswers:
    answers: dict[str, dict[int, str | None]] = {}
    for completion in completions:
        if completion.split == EVAL_SPLIT and completion.role in ROLES:
            answers.setdefault(completion.role, {})[completion.row_index] = (
                completion.parsed_label if completion.status == "ok" else None)
    return EvalAnswers(list(rows), answers)


@dataclass(frozen=True)
class JudgeCall:
    role: str  # where the judgment is stored (judge_role)
    row_index: int
    messages: list[dict[str, str]]
    answer: AnswerFormat


def judge_calls(spec: RunSpec, answers: EvalAnswers, roles: Sequence[str]) -> list[JudgeCall]:
    """The judge's requests for the model graders of `roles` (rows without an answer or a reference need none)."""
    calls: list[JudgeCall] = []
    judge = spec.judge_settings()
    for setting in spec.grader_names:
        grader, name = grader_for(setting, judge), family(setting)
        if name in ("score_model", "label_model"):
            fmt = AnswerFormat.from_request(grader.response_format)
            for role in (r for r in roles if r in answers.graded_roles()):
                for row in answers.rows:
                    sample = answers.sample(role, row)
                    if sample.answer is not None and sample.reference is not None:
                        calls.append(JudgeCall(judge_role(name, role), row.row_index, grader.messages(sample), fmt))
        elif name == "pairwise":
            for role in (r for r in roles if r in (BASE, DISTILLED) and r in answers.answers):
                for row in answers.rows:
                    mine, teacher = answers.answers[role].get(row.row_index), answers.answers.get(TEACHER, {}).get(
                        row.row_index)
                    if mine is None or teacher is None:
                        continue
                    sample = Sample(mine, row.gold_label, row.user_prompt)
                    calls += [JudgeCall(judge_role(name, role, order), row.row_index,
                                        Pairwise.messages(sample, teacher, order), AnswerFormat("generate"))
                              for order in ORDERS]
    return calls


def judge_tasks(run_id: int, spec: RunSpec, calls: Sequence[JudgeCall], prices: PriceTable) -> list[CollectTask]:
    """The calls as collection tasks, one per stored role, each request with its exact prompt tokens (CPU work)."""
    model = spec.judge_model
    budget = answer_budget(model, prices.get(model), answer_tokens=JUDGE_ANSWER_TOKENS)
    by_role: dict[str, list[JudgeCall]] = {}
    for call in calls:
        by_role.setdefault(call.role, []).append(call)
    return [CollectTask(run_id=run_id, split=EVAL_SPLIT, role=role, model=model,
                        requests=[CollectRequest(c.row_index, c.messages, count_chat_tokens(c.messages, model))
                                  for c in group], answer=group[0].answer, budget=budget)
            for role, group in by_role.items()]


def judge_max_micro_usd(run_id: int, spec: RunSpec, answers: EvalAnswers, prices: PriceTable,
                        unanswered_tokens: Mapping[str, int]) -> int:
    """The most the judge's requests can cost, each at its prompt plus its max_completion_tokens. A role that has not
    answered yet (`unanswered_tokens`: role -> the most tokens one of its answers may have) is counted with an
    answer on every row, as long as it may be."""
    filled = {role: dict(found) for role, found in answers.answers.items()}
    for role in unanswered_tokens:
        filled[role] = {row.row_index: "" for row in answers.rows}
    tasks = judge_tasks(run_id, spec, judge_calls(spec, EvalAnswers(answers.rows, filled), list(filled)), prices)
    price = prices.get(spec.judge_model)
    most = 0
    for task in tasks:
        role = task.role.split(":")[2]
        extra = unanswered_tokens.get(role, 0)
        most += sum(price.cost_micro_usd(r.prompt_tokens + extra, task.max_completion_tokens) for r in task.requests)
    return most


@dataclass(frozen=True)
class Graded:
    """Every grade of the eval: grader -> model role -> row -> Grade, and pairwise outcomes by role and row."""

    grades: dict[str, dict[str, dict[int, Grade]]]
    pairwise: dict[str, dict[int, str | None]] = field(default_factory=dict)  # role -> row -> win|tie|loss|None
    judge_micro_usd: int = 0
    judged: int = 0  # judge requests answered


def grade(spec: RunSpec, answers: EvalAnswers, judgments: Sequence[Completion], *,
          graders: Sequence[str] | None = None) -> Graded:
    """Grade every answer with every grader (`graders`: a subset; the baseline leaves the model graders for the
    eval). A model grader's row without a stored judgment is left ungraded."""
    stored = {(c.role, c.row_index): c for c in judgments if is_judgment(c.role)}
    judge = spec.judge_settings()
    grades: dict[str, dict[str, dict[int, Grade]]] = {}
    pairwise: dict[str, dict[int, str | None]] = {}
    for setting in graders if graders is not None else spec.grader_names:
        grader, name = grader_for(setting, judge), family(setting)
        if name == "pairwise":
            for role in (r for r in (BASE, DISTILLED) if r in answers.answers):
                pairwise[role] = {row.row_index: _pairwise(stored, role, row.row_index) for row in answers.rows}
            continue
        grades[setting] = {}
        for role in answers.graded_roles():
            grades[setting][role] = {}
            for row in answers.rows:
                sample = answers.sample(role, row)
                if name in STORED and sample.answer is not None and sample.reference is not None:
                    judgment = stored.get((judge_role(name, role), row.row_index))
                    found = (grader.grade(judgment.parsed_label) if judgment is not None and judgment.status == "ok"
                             else ungraded(NOT_JUDGED))
                elif name in STORED:
                    found = no_answer() if sample.reference is not None else ungraded("no reference for this row")
                else:
                    found = grader.grade(sample)
                grades[setting][role][row.row_index] = found
    paid = [c for c in judgments if is_judgment(c.role) and c.reused_from is None]
    return Graded(grades, pairwise, sum(c.cost_micro_usd for c in paid), sum(c.status == "ok" for c in judgments
                                                                             if is_judgment(c.role)))


def _pairwise(stored: Mapping[tuple[str, int], Completion], role: str, row: int) -> str | None:
    verdicts = []
    for order in ORDERS:
        found = stored.get((judge_role("pairwise", role, order), row))
        verdicts.append(Pairwise.verdict(found.parsed_label) if found is not None and found.status == "ok" else None)
    return Pairwise.outcome(*verdicts)


def grades_for_export(graded: Graded) -> dict[str, dict[int, dict[str, Any]]]:
    """role -> row -> {grader: score (and passed)} for the per-row export."""
    rows: dict[str, dict[int, dict[str, Any]]] = {}
    for name, by_role in graded.grades.items():
        for role, by_row in by_role.items():
            for row, found in by_row.items():
                if found.graded:
                    rows.setdefault(role, {}).setdefault(row, {})[name] = found.passed if found.passed is not None \
                        else round(found.score, 4)
    for role, by_row in graded.pairwise.items():
        for row, outcome in by_row.items():
            if outcome is not None:
                rows.setdefault(role, {}).setdefault(row, {})["pairwise"] = outcome
    return rows


def cosine_pairs(spec: RunSpec, answers: EvalAnswers) -> list[tuple[str, int, str, str]]:
    """(model role, row, answer, reference) of every answer the cosine grader needs embedded, when the run uses it."""
    if not any(family(name) == "cosine" for name in spec.grader_names):
        return []
    pairs = []
    for role in answers.graded_roles():
        for row in answers.rows:
            answer, reference = answers.answers[role].get(row.row_index), answers.reference(row)
            if answer is not None and reference is not None:
                pairs.append((role, row.row_index, answer, reference))
    return pairs


def cosine_max_micro_usd(spec: RunSpec, answers: EvalAnswers, prices: PriceTable,
                         unanswered_tokens: Mapping[str, int]) -> int:
    """The most embedding the cosine grader's texts can cost: the texts known, and `unanswered_tokens` for each
    answer of a role that has not answered yet (role -> the most tokens one may have)."""
    if not any(family(name) == "cosine" for name in spec.grader_names):
        return 0
    known = {text for _, _, answer, reference in cosine_pairs(spec, answers) for text in (answer, reference)}
    known |= {r for row in answers.rows if (r := answers.reference(row)) is not None}
    tokens = sum(count_tokens(sorted(known), EMBEDDING_MODEL))
    tokens += sum(unanswered_tokens.values()) * len(answers.rows)
    return prices.get(EMBEDDING_MODEL).cost_micro_usd(tokens, 0)


async def embed_cosines(embedder: Embedder, storage: Storage, run_id: int, pairs: Sequence[tuple[str, int, str, str]],
                        budget: Budget) -> str | None:
    """Embed the answers and references the cosine grader needs (those not stored already) and store each answer's
    cosine, with what its embeddings cost. Returns why it stopped early, or None."""
    stored = {(c.role, c.row_index) for c in await storage.completions.for_run(run_id, split=EVAL_SPLIT)
              if c.role.startswith(judge_role("cosine", ""))}
    todo = [p for p in pairs if (judge_role("cosine", p[0]), p[1]) not in stored]
    texts = list(dict.fromkeys(text for _, _, answer, reference in todo for text in (answer, reference)))
    vectors: dict[str, Any] = {}
    spent, stopped = 0, None
    try:
        async for batch in embedder.batches(texts, EMBEDDING_MODEL, budget):
            vectors.update({texts[p]: v for p, v in zip(batch.positions, batch.vectors, strict=True)})
            spent += batch.cost_micro_usd
    except (BudgetExceeded, EmbeddingError) as exc:
        stopped = str(exc)
    done = [p for p in todo if p[2] in vectors and p[3] in vectors]
    shares = [spent // len(done) + (i < spent % len(done)) for i in range(len(done))] if done else []
    await storage.completions.save_many(
        Completion(run_id=run_id, row_index=row, split=EVAL_SPLIT, role=judge_role("cosine", role),
                   model=EMBEDDING_MODEL, request_hash=_cosine_hash(answer, reference), status="ok",
                   parsed_label=f"{cosine(vectors[answer], vectors[reference]):.6f}", cost_micro_usd=share)
        for (role, row, answer, reference), share in zip(done, shares, strict=True))
    return stopped


def _cosine_hash(answer: str, reference: str) -> str:
    return hashlib.sha256(json.dumps([EMBEDDING_MODEL, answer, reference]).encode()).hexdigest()
