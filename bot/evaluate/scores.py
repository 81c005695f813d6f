"""How the teacher, the base student and the distilled student score on the eval split, and what that means.

Per model: accuracy against the gold label with a 95% Wilson interval, agreement with the teacher (so a CSV
without labels still gets a table), macro-F1, the share of invalid answers, latency p50/p95 and cost per
1,000 answers (for the distilled model, what its tokens cost plus what hosting it for the eval cost where a
trainer serves it from a dedicated deployment billed by the minute, or trainer=dicl's query embeddings, over the
answers it gave). Between models:
exact McNemar tests on the rows where exactly one of the two is right, and
"gap recovered" = (distilled - base) / (teacher - base). An eval row without a valid answer (invalid, failed or
never answered) counts as wrong, so a model cannot score better by failing.

The `BaselineTable` (teacher vs base student) is posted when collection finishes; the `EvalReport` (all
three) after the distilled model has answered. Both render as a monospace table for Slack.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from bot.core.errors import StateError
from bot.evaluate.stats import Interval, f1_by_label, mcnemar_exact_p, nearest_rank, wilson_interval
from bot.evaluate.verdicts import (
    COLUMN_NAMES,
    Judged,
    TableText,
    against_teacher_verdict,
    baseline_verdict,
    cost_clause,
    distilled_verdict,
    p_text,
)
from bot.evaluate.verdicts import interval_text as _interval
from bot.evaluate.verdicts import number as _number
from bot.evaluate.verdicts import pair_text as _pair
from bot.evaluate.verdicts import percent as _percent
from bot.evaluate.verdicts import usd_text as _usd
from storage import Storage
from storage.completions import Completion
from storage.runs import RunRow

TEACHER, BASE, DISTILLED = "teacher", "student_base", "student_ft"
ROLE_NAMES = {TEACHER: "teacher", BASE: "base student", DISTILLED: "distilled student"}
EVAL_SPLIT = "eval"
FENCE = "```"


# ----- scores ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelScores:
    role: str
    model: str
    rows: int
    answered: int  # valid answers (one of the choices)
    invalid: int  # answers that are not one of the choices
    unanswered: int  # failed requests and rows never asked
    labelled: int  # rows with a gold label
    correct: int
    agreeing: int  # valid answers equal to the teacher's
    teacher_rows: int  # rows where the teacher gave a valid answer
    macro_f1: float | None
    f1_by_label: dict[str, float]
    latency_p50_ms: int | None
    latency_p95_ms: int | None
    cost_per_1k_micro_usd: int | None

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.labelled if self.labelled else None

    @property
    def accuracy_ci(self) -> Interval | None:
        return wilson_interval(self.correct, self.labelled)

    @property
    def agreement(self) -> float | None:
        return self.agreeing / self.teacher_rows if self.teacher_rows else None

    @property
    def agreement_ci(self) -> Interval | None:
        return wilson_interval(self.agreeing, self.teacher_rows)

    @property
    def invalid_rate(self) -> float | None:
        given = self.answered + self.invalid
        return self.invalid / given if given else None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for name in ("accuracy", "accuracy_ci", "agreement", "agreement_ci", "invalid_rate"):
            value = getattr(self, name)
            data[name] = asdict(value) if isinstance(value, Interval) else value
        return data


@dataclass(frozen=True)
class PairedTest(Judged):
    """Two models on the same rows: how often only one of them was right (against `reference`)."""

    first: str
    second: str
    reference: str  # "gold" or "teacher"
    rows: int
    first_only: int
    second_only: int

    @property
    def p_value(self) -> float:
        return mcnemar_exact_p(self.first_only, self.second_only)

    @property
    def difference(self) -> float:
        """First minus second, as a share of the rows (0.05 = five points)."""
        return (self.first_only - self.second_only) / self.rows if self.rows else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "p_value": self.p_value, "difference": self.difference}


@dataclass(frozen=True)
class _Answers:
    """One role's answers on the eval split by row: the valid label (None when there is none)."""

    model: str
    labels: dict[int, str | None]
    invalid: set[int]  # rows answered with something that is not one of the choices
    latencies: list[int]
    costs: list[int]


def _answers(completions: Sequence[Completion], role: str) -> _Answers | None:
    mine = [c for c in completions if c.role == role and c.split == EVAL_SPLIT]
    if not mine:
        return None
    given = [c for c in mine if c.status in ("ok", "invalid")]
    return _Answers(
        model=Counter(c.model for c in mine).most_common(1)[0][0],
        labels={c.row_index: c.parsed_label if c.status == "ok" else None for c in mine},
        invalid={c.row_index for c in mine if c.status == "invalid"},
        latencies=[c.latency_ms for c in given if c.latency_ms is not None],
        costs=[c.cost_micro_usd for c in given],
    )


def _scores(role: str, answers: _Answers, rows: Sequence[RunRow], teacher: _Answers | None,
            hosting_micro_usd: int = 0) -> ModelScores:
    predicted = [answers.labels.get(r.row_index) for r in rows]
    labelled = [(r.gold_label, p) for r, p in zip(rows, predicted, strict=True) if r.gold_label is not None]
    teacher_labels = [teacher.labels.get(r.row_index) if teacher else None for r in rows]
    agreeing = [p == t for p, t in zip(predicted, teacher_labels, strict=True) if t is not None]
    f1 = f1_by_label([g for g, _ in labelled], [p for _, p in labelled]) if labelled else {}
    spent = sum(answers.costs) + hosting_micro_usd
    cost = (spent * 2000 + len(answers.costs)) // (2 * len(answers.costs)) if answers.costs else None
    answered = sum(p is not None for p in predicted)
    invalid = sum(r.row_index in answers.invalid for r in rows)
    return ModelScores(
        role=role, model=answers.model, rows=len(rows), answered=answered, invalid=invalid,
        unanswered=len(rows) - answered - invalid,
        labelled=len(labelled), correct=sum(g == p for g, p in labelled),
        agreeing=sum(agreeing), teacher_rows=len(agreeing),
        macro_f1=sum(f1.values()) / len(f1) if f1 else None, f1_by_label=f1,
        latency_p50_ms=nearest_rank(answers.latencies, 50), latency_p95_ms=nearest_rank(answers.latencies, 95),
        cost_per_1k_micro_usd=cost,
    )


def _paired(first: str, second: str, answers: Mapping[str, _Answers], rows: Sequence[RunRow]) -> PairedTest | None:
    """Compare against gold labels when the rows have them, else against the teacher (when neither is it)."""
    if any(r.gold_label is not None for r in rows):
        reference, truth = "gold", {r.row_index: r.gold_label for r in rows if r.gold_label is not None}
    elif TEACHER not in (first, second):
        reference = "teacher"
        truth = {i: label for i, label in answers[TEACHER].labels.items() if label is not None}
    else:
        return None
    ordered = [r.row_index for r in rows if r.row_index in truth]
    right = {role: [answers[role].labels.get(i) == truth[i] for i in ordered] for role in (first, second)}
    pairs = list(zip(right[first], right[second], strict=True))
    return PairedTest(first, second, reference, len(pairs), sum(a and not b for a, b in pairs),
                      sum(b and not a for a, b in pairs))


# ----- reports --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Table(TableText):
    """What the baseline table and the eval report share: scores by role, paired tests and the text layout.
    Each subclass gives the one-line `verdict` that heads the text."""

    scores: dict[str, ModelScores]
    tests: list[PairedTest]
    kind: str = field(default="", init=False)

    @property
    def labelled(self) -> bool:
        return any(s.labelled for s in self.scores.values())

    def primary(self, role: str) -> float | None:
        """Accuracy with gold labels; agreement with the teacher (the teacher's own being 1) without."""
        scores = self.scores[role]
        if self.labelled:
            return scores.accuracy
        return 1.0 if role == TEACHER else scores.agreement

    @property
    def metric(self) -> str:
        return "accuracy" if self.labelled else "agreement with the teacher"

    def table_lines(self) -> list[str]:
        """The per-model table: one column per model, aligned for a monospace font."""
        columns = list(self.scores.values())
        rows: list[tuple[str, list[str]]] = []
        if self.labelled:
            rows += [("Accuracy", [_percent(s.accuracy) for s in columns]),
                     ("  95% CI", [_interval(s.accuracy_ci) for s in columns])]
        rows += [("Agrees with teacher", ["—" if s.role == TEACHER else _percent(s.agreement) for s in columns])]
        if not self.labelled:
            rows += [("  95% CI", ["—" if s.role == TEACHER else _interval(s.agreement_ci) for s in columns])]
        else:
            rows += [("Macro-F1", [_number(s.macro_f1) for s in columns])]
        rows += [
            ("Invalid answers", [_percent(s.invalid_rate) for s in columns]),
            ("No answer", [str(s.unanswered) for s in columns]),
            ("Latency p50/p95 ms", [_pair(s.latency_p50_ms, s.latency_p95_ms) for s in columns]),
            ("Cost per 1,000", [_usd(s.cost_per_1k_micro_usd) for s in columns]),
        ]
        width = max(10, *(len(c) for _, cells in rows for c in cells)) + 2
        label_width = max(len(name) for name, _ in rows)
        header = " " * label_width + "".join(COLUMN_NAMES[s.role].rjust(width) for s in columns)
        return [header] + [name.ljust(label_width) + "".join(c.rjust(width) for c in cells) for name, cells in rows]

    def test_lines(self) -> list[str]:
        lines = []
        for test in self.tests:
            names = f"{ROLE_NAMES[test.first].capitalize()} vs {ROLE_NAMES[test.second]}"
            against = "" if test.reference == "gold" else " (agreement with the teacher)"
            lines.append(
                f"{names}: {100 * test.difference:+.1f} points{against}, {p_text(test.p_value)} (exact McNemar; "
                f"{test.first_only} rows only the {ROLE_NAMES[test.first]} got right, {test.second_only} only the "
                f"{ROLE_NAMES[test.second]})"
            )
        return lines


    def label_lines(self) -> list[str]:
        """F1 per label (most frequent first): long for many labels, so kept apart for the Slack layer to split."""
        if not self.labelled:
            return []
        labels = sorted({label for scores in self.scores.values() for label in scores.f1_by_label})
        width = max(len("F1 by label"), *(len(label) for label in labels)) + 2
        header = "F1 by label".ljust(width) + "".join(COLUMN_NAMES[r].rjust(14) for r in self.scores)
        return [header] + [label.ljust(width) + "".join(_number(s.f1_by_label.get(label)).rjust(14)
                                                         for s in self.scores.values()) for label in labels]

    def extra_lines(self) -> list[str]:
        return [] if self.labelled else ["No gold labels: scores are agreement with the teacher's answers."]


    def role_metrics(self, role: str) -> dict[str, Any]:
        """What the evals table stores for one model: its scores, and the headline score the run card shows."""
        value = None if role == TEACHER and not self.labelled else self.primary(role)  # the teacher is the reference
        return {**self.scores[role].to_dict(), "primary": {"metric": self.metric, "value": value}}

    def no_answers(self) -> str | None:
        """The verdict when a model has no valid answer at all: then there is nothing to compare."""
        silent = [ROLE_NAMES[role] for role, scores in self.scores.items() if scores.answered == 0]
        if not silent:
            return None
        return (f"No valid answers from the {' or the '.join(silent)} on the eval split, so there is nothing to "
                "compare: see why in the thread, then collect again.")

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "verdict": self.verdict,
            "reference": "gold" if self.labelled else "teacher",
            "models": {role: scores.to_dict() for role, scores in self.scores.items()},
            "tests": [test.to_dict() for test in self.tests],
        }


@dataclass(frozen=True)
class BaselineTable(_Table):
    """Teacher vs base student, posted right after collection: is there a gap worth distilling?"""

    kind: str = field(default="baseline", init=False)

    @property
    def verdict(self) -> str:
        teacher, base = self.primary(TEACHER), self.primary(BASE)
        if self.no_answers():
            return self.no_answers()
        if not self.tests:
            return (f"No gold labels: the base student agrees with the teacher on {_percent(base)} of the eval rows; "
                    "distilling aims to raise that.")
        return baseline_verdict(teacher, base, self.tests[0], self.metric, _percent,
                                lambda gap: f"{100 * gap:.1f} points")


@dataclass(frozen=True)
class EvalReport(_Table):
    """Teacher, base student and distilled student, with the paired tests and the verdict."""

    kind: str = field(default="eval", init=False)

    def _test(self, second: str) -> PairedTest | None:
        return next((t for t in self.tests if t.first == DISTILLED and t.second == second), None)

    @property
    def cost_clause(self) -> str:
        return cost_clause(self.scores[TEACHER].cost_per_1k_micro_usd, self.scores[DISTILLED].cost_per_1k_micro_usd)

    @property
    def verdict(self) -> str:
        teacher, base, distilled = self.primary(TEACHER), self.primary(BASE), self.primary(DISTILLED)
        vs_base, vs_teacher, cost = self._test(BASE), self._test(TEACHER), self.cost_clause
        if self.no_answers():
            return self.no_answers()
        if vs_teacher is None:  # no gold labels: the teacher is the reference
            lead = f"Distilled agrees with the teacher on {_percent(distilled)} of the eval rows"
            return against_teacher_verdict(lead, base, vs_base, _percent, cost)
        return distilled_verdict(teacher, base, distilled, vs_base, vs_teacher, self.metric, _percent, cost,
                                 self.gap_recovered)

    def extra_lines(self) -> list[str]:
        recovered = self.gap_recovered
        gap = (f"Gap recovered: {recovered:.0%} of the teacher's lead over the base student ({self.metric})."
               if recovered is not None else
               "Gap recovered: undefined, because the teacher and the base student score the same: there was no "
               "gap to recover.")
        return [gap, *super().extra_lines()]

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "gap_recovered": self.gap_recovered}


def model_scores(rows: Sequence[RunRow], completions: Sequence[Completion], roles: Sequence[str],
                 hosting_micro_usd: int = 0) -> dict[str, ModelScores]:
    """Each role's scores on the eval rows; StateError when a role has not answered yet. `hosting_micro_usd`: what
    serving the distilled model for its eval cost beyond its tokens."""
    answers = _require(completions, roles)
    hosting = {DISTILLED: hosting_micro_usd}
    return {role: _scores(role, answers[role], rows, answers[TEACHER], hosting.get(role, 0)) for role in roles}


def baseline_table(rows: Sequence[RunRow], completions: Sequence[Completion]) -> BaselineTable:
    answers = _require(completions, (TEACHER, BASE))
    test = _paired(TEACHER, BASE, answers, rows)
    return BaselineTable(model_scores(rows, completions, (TEACHER, BASE)), [test] if test else [])


def eval_report(rows: Sequence[RunRow], completions: Sequence[Completion], hosting_micro_usd: int = 0,
                distilled_model: str | None = None) -> EvalReport:
    """`hosting_micro_usd`: what serving the distilled model for its eval cost beyond its tokens; `distilled_model`:
    its name when it is not the model its answers were asked of (trainer=dicl asks the base student)."""
    answers = _require(completions, (TEACHER, BASE, DISTILLED))
    scores = model_scores(rows, completions, (TEACHER, BASE, DISTILLED), hosting_micro_usd)
    if distilled_model is not None:
        scores[DISTILLED] = replace(scores[DISTILLED], model=distilled_model)
    tests = [t for t in (_paired(DISTILLED, BASE, answers, rows), _paired(DISTILLED, TEACHER, answers, rows)) if t]
    return EvalReport(scores, tests)


def role_scores(rows: Sequence[RunRow], completions: Sequence[Completion], role: str,
                hosting_micro_usd: int = 0) -> ModelScores:
    """One model's scores on `rows`, against the gold labels and the teacher's answers among `completions`."""
    answers = _require(completions, (TEACHER, role))
    return _scores(role, answers[role], rows, answers[TEACHER], hosting_micro_usd)


async def baseline_for_run(storage: Storage, run_id: int) -> BaselineTable:
    rows, completions = await _stored(storage, run_id)
    return await asyncio.to_thread(baseline_table, rows, completions)


async def report_for_run(storage: Storage, run_id: int, distilled_model: str | None = None) -> EvalReport:
    rows, completions = await _stored(storage, run_id)
    # What served the distilled model beyond its tokens is recorded on the job that made it.
    job = next((j for j in reversed(await storage.jobs.for_run(run_id)) if j.fine_tuned_model), None)
    return await asyncio.to_thread(eval_report, rows, completions, job.hosting_micro_usd if job else 0,
                                   distilled_model)


async def _stored(storage: Storage, run_id: int) -> tuple[list[RunRow], list[Completion]]:
    rows = await storage.runs.rows(run_id, EVAL_SPLIT)
    if not rows:
        raise StateError("This run has no eval split yet: collect answers first (`/distill collect NAME`).")
    return rows, await storage.completions.for_run(run_id, split=EVAL_SPLIT)


def _require(completions: Sequence[Completion], roles: Sequence[str]) -> dict[str, _Answers]:
    found = {role: _answers(completions, role) for role in roles}
    missing = [ROLE_NAMES[role] for role, answers in found.items() if answers is None]
    if missing:
        raise StateError(f"No answers on the eval split yet from the {' and the '.join(missing)}; the table needs "
                         "them. Finish that stage first.")
    return {role: answers for role, answers in found.items() if answers is not None}


# ----- text -----------------------------------------------------------------------------------------------


