"""The eval table per grader: each grader's score for the teacher, the base student and the distilled student, with
95% intervals, paired tests, the gap recovered and a verdict.

Per grader and model: a pass rate with Wilson's interval where the grader passes or fails rows (string_check, numeric,
json_match and each of its fields, label_model, a metric or score_model given a pass_threshold), else the mean score
with a seeded percentile-bootstrap interval. Pairwise: the student's win, tie and loss rates against the teacher (each
with Wilson's interval) and the adjusted win rate, win + tie/2 (FastChat's). Between models, on the rows both were
graded on: exact McNemar for pass rates, a paired bootstrap for means (and for pairwise, on win = 1, tie = 1/2, loss =
0). The first grader is the headline: it makes the verdict, the gap recovered and the run card's figure. Without gold
answers the teacher's answers are the reference, so the teacher has no score of its own and the verdict says how
the distilled student moved from the base student's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from bot.core.money import format_usd
from bot.data.splits import PreparedRow
from bot.evaluate.grading import Graded, eval_answers, grade, is_judgment
from bot.evaluate.scores import BASE, DISTILLED, EVAL_SPLIT, ROLE_NAMES, TEACHER, ModelScores, model_scores
from bot.evaluate.stats import Interval, bootstrap_mean_interval, mcnemar_exact_p, paired_bootstrap, wilson_interval
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
from bot.graders import STORED, family
from bot.graders.base import Grade
from bot.graders.pairwise import LOSS, TIE, WIN
from bot.spec.settings import RunSpec
from storage import Storage
from storage.completions import Completion
from storage.runs import RunRow

PAIRWISE = "pairwise"
OUTCOME_SCORE = {WIN: 1.0, TIE: 0.5, LOSS: 0.0}


@dataclass(frozen=True)
class Figure:
    """One grader's result for one model."""

    kind: str  # "pass" (a pass rate) or "mean" (a mean score)
    value: float | None
    interval: Interval | None
    graded: int  # rows graded
    ungraded: int  # rows the grader could not grade (no reference, no judgment)
    passed: int = 0
    mean: float | None = None  # the mean score, for pass graders too
    reasons: tuple[str, ...] = ()  # why rows could not be graded

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "interval": asdict(self.interval) if self.interval else None}


@dataclass(frozen=True)
class PairwiseFigure:
    """A student against the teacher, judged in both orders."""

    wins: int
    ties: int
    losses: int
    unread: int  # rows where a judgment could not be read (or was never made)

    @property
    def rows(self) -> int:
        return self.wins + self.ties + self.losses

    def rate(self, outcome: str) -> float | None:
        count = {WIN: self.wins, TIE: self.ties, LOSS: self.losses}[outcome]
        return count / self.rows if self.rows else None

    def interval(self, outcome: str) -> Interval | None:
        return wilson_interval({WIN: self.wins, TIE: self.ties, LOSS: self.losses}[outcome], self.rows)

    @property
    def adjusted(self) -> float | None:
        """FastChat's win_rate_adjusted: each tie counts as half a win."""
        return (self.wins + 0.5 * self.ties) / self.rows if self.rows else None

    def to_dict(self) -> dict[str, Any]:
        return {"wins": self.wins, "ties": self.ties, "losses": self.losses, "unread": self.unread,
                "adjusted_win_rate": self.adjusted,
                **{f"{o}_rate": self.rate(o) for o in (WIN, TIE, LOSS)},
                **{f"{o}_interval": asdict(i) if (i := self.interval(o)) else None for o in (WIN, TIE, LOSS)}}


@dataclass(frozen=True)
class Test(Judged):
    """Two models on the rows both were graded on (first minus second)."""

    grader: str
    first: str
    second: str
    rows: int
    difference: float
    p_value: float
    method: str  # exact McNemar | paired bootstrap

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def figure(grades: Mapping[int, Grade]) -> Figure:
    graded = [g for g in grades.values() if g.graded]
    scores = [g.score for g in graded]
    mean = sum(scores) / len(scores) if scores else None
    reasons = tuple(dict.fromkeys(g.error for g in grades.values() if g.error))
    if graded and all(g.passed is not None for g in graded):
        passed = sum(bool(g.passed) for g in graded)
        return Figure("pass", passed / len(graded), wilson_interval(passed, len(graded)), len(graded),
                      len(grades) - len(graded), passed, mean, reasons)
    return Figure("mean", mean, bootstrap_mean_interval(scores), len(graded), len(grades) - len(graded), mean=mean,
                  reasons=reasons)


def field_figures(grades: Mapping[int, Grade]) -> dict[str, Figure]:
    """json_match's figure per field: the share of graded rows where the field matched."""
    fields = list(dict.fromkeys(name for g in grades.values() for name in g.fields))
    return {name: figure({row: Grade(float(g.fields.get(name, False)), g.fields.get(name, False))
                          for row, g in grades.items() if g.graded}) for name in fields}


def _paired_values(grades: Mapping[str, Mapping[int, Grade]], first: str, second: str) -> list[tuple[Grade, Grade]]:
    rows = [r for r, g in grades[first].items() if g.graded and grades[second].get(r) is not None
            and grades[second][r].graded]
    return [(grades[first][r], grades[second][r]) for r in rows]


def compare(name: str, grades: Mapping[str, Mapping[int, Grade]], first: str, second: str) -> Test | None:
    if first not in grades or second not in grades:
        return None
    pairs = _paired_values(grades, first, second)
    if not pairs:
        return None
    if all(a.passed is not None and b.passed is not None for a, b in pairs):
        only_first = sum(bool(a.passed) and not b.passed for a, b in pairs)
        only_second = sum(bool(b.passed) and not a.passed for a, b in pairs)
        return Test(name, first, second, len(pairs), (only_first - only_second) / len(pairs),
                    mcnemar_exact_p(only_first, only_second), "exact McNemar")
    paired = paired_bootstrap([a.score for a, _ in pairs], [b.score for _, b in pairs])
    return Test(name, first, second, len(pairs), paired.difference, paired.p_value, "paired bootstrap")


def compare_pairwise(outcomes: Mapping[str, Mapping[int, str | None]]) -> Test | None:
    """Distilled vs base on the adjusted win rate against the teacher, on rows both were judged on."""
    if DISTILLED not in outcomes or BASE not in outcomes:
        return None
    rows = [r for r, o in outcomes[DISTILLED].items() if o is not None and outcomes[BASE].get(r) is not None]
    if not rows:
        return None
    paired = paired_bootstrap([OUTCOME_SCORE[outcomes[DISTILLED][r]] for r in rows],
                              [OUTCOME_SCORE[outcomes[BASE][r]] for r in rows])
    return Test(PAIRWISE, DISTILLED, BASE, len(rows), paired.difference, paired.p_value, "paired bootstrap")


def pairwise_figure(outcomes: Mapping[int, str | None]) -> PairwiseFigure:
    found = list(outcomes.values())
    return PairwiseFigure(found.count(WIN), found.count(TIE), found.count(LOSS), found.count(None))


@dataclass(frozen=True)
class GraderReport(TableText):
    """The table of a generate or extract run (or a classify run with graders): `kind` is baseline (teacher vs base
    student, after collection) or eval (all three)."""

    kind: str
    graders: list[str]
    labelled: bool  # gold answers exist; else the teacher's answers are the reference
    scores: dict[str, ModelScores]  # answered, invalid, latency, cost per role
    figures: dict[str, dict[str, Figure]]  # grader -> role -> figure
    fields: dict[str, dict[str, Figure]] = field(default_factory=dict)  # json_match field -> role -> figure
    pairwise: dict[str, PairwiseFigure] = field(default_factory=dict)  # role -> against the teacher
    tests: list[Test] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)  # model graders left for the eval report
    judge_micro_usd: int = 0
    judge_model: str | None = None

    # ----- the headline ---------------------------------------------------------------------------------

    @property
    def headline(self) -> str | None:
        """The first grader with figures: it makes the verdict."""
        return next((g for g in self.graders if g in self.figures or (g == PAIRWISE and self.pairwise)), None)

    def primary(self, role: str) -> float | None:
        name = self.headline
        if name == PAIRWISE:
            found = self.pairwise.get(role)
            return found.adjusted if found else None
        found_figure = self.figures.get(name, {}).get(role) if name else None
        return found_figure.value if found_figure else None

    @property
    def metric(self) -> str:
        name = self.headline or "score"
        if name == PAIRWISE:
            return "pairwise win rate against the teacher"
        kind = next(iter(self.figures.get(name, {}).values()), None)
        what = "pass rate" if kind is not None and kind.kind == "pass" else "mean score"
        return f"{name} {what}" + ("" if self.labelled else " against the teacher's answers")

    def show(self, value: float | None) -> str:
        name = self.headline
        kind = next(iter(self.figures.get(name, {}).values()), None) if name else None
        return _percent(value) if name == PAIRWISE or (kind and kind.kind == "pass") else _number(value)

    def _test(self, first: str, second: str) -> Test | None:
        return next((t for t in self.tests if t.grader == self.headline and t.first == first and t.second == second),
                    None)

    @property
    def verdict(self) -> str:
        silent = [ROLE_NAMES[role] for role, scores in self.scores.items() if scores.answered == 0]
        if silent:
            return (f"No valid answers from the {' or the '.join(silent)} on the eval split, so there is nothing to "
                    "compare: see why in the thread, then collect again.")
        if self.headline is None:
            return "No grader could grade these answers: see the notes below the table."
        if self.kind == "baseline":
            return self._baseline_verdict()
        teacher, base, distilled = self.primary(TEACHER), self.primary(BASE), self.primary(DISTILLED)
        vs_base, vs_teacher = self._test(DISTILLED, BASE), self._test(DISTILLED, TEACHER)
        if vs_base is None:
            return f"Distilled scores {self.show(distilled)} ({self.metric}); too few rows were graded to compare."
        if vs_teacher is None:  # the teacher is the reference (or the headline is pairwise against it)
            lead = f"Distilled scores {self.show(distilled)} ({self.metric})"
            return against_teacher_verdict(lead, base, vs_base, self.show, self.cost_clause)
        return distilled_verdict(teacher, base, distilled, vs_base, vs_teacher, self.metric, self.show,
                                 self.cost_clause, self.gap_recovered)

    def _baseline_verdict(self) -> str:
        test = self._test(TEACHER, BASE)
        if test is None:
            return (f"The base student scores {self.show(self.primary(BASE))} ({self.metric}); distilling aims to "
                    "raise that.")
        return baseline_verdict(self.primary(TEACHER), self.primary(BASE), test, self.metric, self.show,
                                lambda gap: f"{self.show(abs(gap))}")

    @property
    def cost_clause(self) -> str:
        teacher, distilled = self.scores.get(TEACHER), self.scores.get(DISTILLED)
        return cost_clause(teacher.cost_per_1k_micro_usd if teacher else None,
                           distilled.cost_per_1k_micro_usd if distilled else None)

    # ----- text -----------------------------------------------------------------------------------------

    def table_lines(self) -> list[str]:
        roles = list(self.scores)
        rows: list[tuple[str, list[str]]] = []
        for name in self.graders:
            if name == PAIRWISE:
                rows += self._pairwise_rows(roles)
                continue
            by_role = self.figures.get(name)
            if not by_role:
                continue
            kind = next(iter(by_role.values())).kind
            rows.append((f"{name} ({'pass rate' if kind == 'pass' else 'mean'})",
                         [self._cell(by_role.get(r)) for r in roles]))
            rows.append(("  95% CI", [self._interval(by_role.get(r)) for r in roles]))
            if name == "json_match":
                for field_name, field_roles in self.fields.items():
                    rows.append((f"  field {field_name}", [self._cell(field_roles.get(r)) for r in roles]))
                    rows.append(("    95% CI", [self._interval(field_roles.get(r)) for r in roles]))
        rows += [
            ("Invalid answers", [_percent(self.scores[r].invalid_rate) for r in roles]),
            ("No answer", [str(self.scores[r].unanswered) for r in roles]),
            ("Latency p50/p95 ms", [_pair(self.scores[r].latency_p50_ms, self.scores[r].latency_p95_ms)
                                    for r in roles]),
            ("Cost per 1,000", [_usd(self.scores[r].cost_per_1k_micro_usd) for r in roles]),
        ]
        width = max(10, *(len(c) for _, cells in rows for c in cells)) + 2
        label_width = max(len(name) for name, _ in rows)
        header = " " * label_width + "".join(COLUMN_NAMES[r].rjust(width) for r in roles)
        return [header] + [name.ljust(label_width) + "".join(c.rjust(width) for c in cells) for name, cells in rows]

    def _pairwise_rows(self, roles: Sequence[str]) -> list[tuple[str, list[str]]]:
        if not self.pairwise:
            return []

        def cells(render: Any) -> list[str]:
            return [render(self.pairwise[r]) if r in self.pairwise else "—" for r in roles]

        return [("pairwise vs teacher W/T/L", cells(lambda f: "/".join(
                    f"{100 * (f.rate(o) or 0):.0f}" for o in (WIN, TIE, LOSS)) + "%" if f.rows else "—")),
                ("  win 95% CI", cells(lambda f: _interval(f.interval(WIN)))),
                ("  win + tie/2", cells(lambda f: _percent(f.adjusted)))]

    def _cell(self, found: Figure | None) -> str:
        if found is None:
            return "—"
        return _percent(found.value) if found.kind == "pass" else _number(found.value)

    def _interval(self, found: Figure | None) -> str:
        if found is None or found.interval is None:
            return "—"
        return _interval(found.interval) if found.kind == "pass" else \
            f"{found.interval.low:.2f}–{found.interval.high:.2f}"

    def test_lines(self) -> list[str]:
        lines = []
        for test in self.tests:
            scale = 100 if self._is_rate(test.grader) else 1
            unit = " points" if scale == 100 else ""
            lines.append(f"{test.grader}: {ROLE_NAMES[test.first]} vs {ROLE_NAMES[test.second]} "
                         f"{scale * test.difference:+.{1 if scale == 100 else 2}f}{unit}, {p_text(test.p_value)} "
                         f"({test.method}, {test.rows} rows)")
        return lines

    def _is_rate(self, grader: str) -> bool:
        by_role = self.figures.get(grader)
        return grader == PAIRWISE or bool(by_role and next(iter(by_role.values())).kind == "pass")

    def extra_lines(self) -> list[str]:
        notes = []
        if self.kind == "eval":
            recovered = self.gap_recovered
            notes.append(f"Gap recovered: {recovered:.0%} of the teacher's lead over the base student "
                         f"({self.metric})." if recovered is not None else
                         "Gap recovered: undefined (the teacher and the base student score the same, or the teacher "
                         "is the reference).")
        if not self.labelled:
            notes.append("No reference column: every answer is graded against the teacher's answer on the same row.")
        for name, by_role in self.figures.items():
            ungraded = sum(f.ungraded for f in by_role.values())
            reasons = "; ".join(dict.fromkeys(r for f in by_role.values() for r in f.reasons))
            if ungraded:
                notes.append(f"{name}: {ungraded} answers could not be graded: {reasons}.")
        unread = sum(f.unread for f in self.pairwise.values())
        if unread:
            notes.append(f"pairwise: {unread} rows left out (an answer missing, or a judgment without [[A]], [[B]] or "
                         "[[C]]).")
        if self.pending:
            notes.append(f"{', '.join(self.pending)}: judged by the model in the eval report, within the approved "
                         "cost of the train stage.")
        if self.judge_micro_usd and self.judge_model:
            notes.append(f"The judge ({self.judge_model}) cost {format_usd(self.judge_micro_usd)}.")
        return notes

    def role_metrics(self, role: str) -> dict[str, Any]:
        """What the evals table stores for one model, with the headline figure the run card shows."""
        return {**self.scores[role].to_dict(), "primary": {"metric": self.metric, "value": self.primary(role)},
                "graders": {name: by_role[role].to_dict() for name, by_role in self.figures.items() if role in by_role},
                "fields": {name: by_role[role].to_dict() for name, by_role in self.fields.items() if role in by_role},
                "pairwise": self.pairwise[role].to_dict() if role in self.pairwise else None}

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "verdict": self.verdict, "reference": "gold" if self.labelled else "teacher",
                "graders": list(self.graders), "models": {role: self.role_metrics(role) for role in self.scores},
                "tests": [t.to_dict() for t in self.tests], "gap_recovered": self.gap_recovered,
                "judge_micro_usd": self.judge_micro_usd}

    def panels(self) -> list[tuple[str, str, dict[str, tuple[float | None, Interval | None]]]]:
        """The chart's panels: (title, 'rate' or 'mean', role -> (value, interval)), one per grader."""
        found = []
        for name in self.graders:
            if name == PAIRWISE and self.pairwise:
                found.append(("pairwise: win rate vs teacher", "rate",
                              {r: (f.rate(WIN), f.interval(WIN)) for r, f in self.pairwise.items()}))
            elif name in self.figures:
                by_role = self.figures[name]
                kind = next(iter(by_role.values())).kind
                found.append((f"{name} ({'pass rate' if kind == 'pass' else 'mean'})",
                              "rate" if kind == "pass" else "mean",
                              {r: (f.value, f.interval) for r, f in by_role.items()}))
        return found


def grader_report(kind: str, graders: Sequence[str], labelled: bool, scores: dict[str, ModelScores], graded: Graded,
                  pending: Sequence[str] = (), judge_model: str | None = None) -> GraderReport:
    figures = {name: {role: figure(rows) for role, rows in by_role.items()} for name, by_role in graded.grades.items()}
    fields: dict[str, dict[str, Figure]] = {}
    for role, rows in graded.grades.get("json_match", {}).items():
        for field_name, found in field_figures(rows).items():
            fields.setdefault(field_name, {})[role] = found
    pairwise = {role: pairwise_figure(outcomes) for role, outcomes in graded.pairwise.items()}
    pairs = [(TEACHER, BASE)] if kind == "baseline" else [(DISTILLED, BASE), (DISTILLED, TEACHER)]
    tests = [t for name, by_role in graded.grades.items() for first, second in pairs
             if (t := compare(name, by_role, first, second)) is not None]
    if kind == "eval" and (pairwise_test := compare_pairwise(graded.pairwise)) is not None:
        tests.append(pairwise_test)
    return GraderReport(kind, list(graders), labelled, scores, figures, fields, pairwise, tests, list(pending),
                        graded.judge_micro_usd, judge_model)


def uses_graders(spec: RunSpec) -> bool:
    """Whether the run's table is a grader report: free text and extractions always; a classification when the team
    set graders (otherwise it keeps its accuracy table, bot/evaluate/scores.py)."""
    return spec.task != "classify" or spec.graders is not None


def build_report(kind: str, spec: RunSpec, rows: Sequence[PreparedRow], completions: Sequence[Completion],
                 hosting_micro_usd: int = 0) -> GraderReport:
    """The baseline (teacher and base student, deterministic graders only: the judge is paid in the eval) or the
    eval report (all three models, every grader) from the stored answers and judgments (CPU work)."""
    roles = (TEACHER, BASE) if kind == "baseline" else (TEACHER, BASE, DISTILLED)
    scores = model_scores([RunRow(EVAL_SPLIT, r.row_index, r.input_hash, r.gold_label) for r in rows], completions,
                          roles, hosting_micro_usd)
    answers = eval_answers(rows, [c for c in completions if c.role in roles or is_judgment(c.role)])
    judged = [name for name in spec.grader_names if family(name) in STORED]
    graders = [name for name in spec.grader_names if name not in judged] if kind == "baseline" else None
    graded = grade(spec, answers, completions, graders=graders)
    return grader_report(kind, spec.grader_names, answers.labelled, scores, graded,
                         pending=judged if kind == "baseline" else (), judge_model=spec.judge_model)


async def report_for_run(storage: Storage, run_id: int, spec: RunSpec, rows: Sequence[PreparedRow], kind: str,
                         hosting_micro_usd: int = 0) -> GraderReport:
    completions = await storage.completions.for_run(run_id, split=EVAL_SPLIT)
    return await asyncio.to_thread(build_report, kind, spec, rows, completions, hosting_micro_usd)
