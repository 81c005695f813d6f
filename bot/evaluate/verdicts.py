"""The one-line verdicts that head an eval table, in plain words, for any headline score.

Shared by the classification tables (bot/evaluate/scores.py: accuracy, or agreement with the teacher) and the grader
reports (bot/evaluate/grader_report.py: a grader's pass rate or mean score). A comparison between two models says how
far apart they are, how sure that is, and whether the gap is small enough to call a match; `show` writes a score as the
table does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from bot.core.money import format_usd
from bot.evaluate.stats import Interval

Show = Callable[[float | None], str]


class Comparison(Protocol):
    difference: float  # first minus second, on the score's scale

    @property
    def p_value(self) -> float: ...

    @property
    def significant(self) -> bool: ...

    @property
    def close(self) -> bool: ...

    def undecided(self) -> str: ...


ALPHA = 0.05
# Two models "match within noise" only when the test finds no difference AND they are this close; a larger gap
# that is not significant means too few eval rows to tell, and the verdict says so rather than claim a match.
CLOSE = 0.05


class Judged:
    """What every paired test says from its p-value, its difference and its rows (a mixin of the tests)."""

    rows: int

    @property
    def significant(self) -> bool:
        return self.p_value < ALPHA

    @property
    def close(self) -> bool:
        return abs(self.difference) <= CLOSE

    def undecided(self) -> str:
        """The clause for a difference too large to call a match and too uncertain to call a difference."""
        return f"{self.rows} eval rows are too few to confirm the difference (raise eval for a firmer answer)"


COLUMN_NAMES = {"teacher": "teacher", "student_base": "base", "student_ft": "distilled"}  # short: a narrow table


class TableText:
    """The text every eval table shares (a mixin): its verdict, then its table, tests, notes and models, and the gap
    recovered. A table gives `verdict`, `primary(role)`, `scores` (role -> scores with a `model`), `table_lines`,
    `test_lines` and `extra_lines`."""

    @property
    def gap_recovered(self) -> float | None:
        """(distilled - base) / (teacher - base) on the headline score (`primary`); None when the teacher and the base
        student score the same, or a score is missing."""
        teacher, base, distilled = (self.primary(role) for role in ("teacher", "student_base", "student_ft"))
        if teacher is None or base is None or distilled is None or teacher == base:
            return None
        return (distilled - base) / (teacher - base)

    def model_line(self) -> str:
        return "Models: " + " · ".join(f"{COLUMN_NAMES[r]} {s.model}" for r, s in self.scores.items())

    def body_lines(self) -> list[str]:
        """Everything below the verdict: the table, the tests, notes and the models."""
        return [*self.table_lines(), "", *self.test_lines(), *self.extra_lines(), self.model_line()]

    def lines(self) -> list[str]:
        return [self.verdict, "", *self.body_lines()]

    def body_text(self) -> str:
        """The text without its verdict, for messages that show the verdict on its own."""
        return "\n".join(self.body_lines())

    def to_text(self) -> str:
        return "\n".join(self.lines())


def percent(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f}%"


def number(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def interval_text(interval: Interval | None) -> str:
    """A rate's interval in percent: 35.6–53.1."""
    return "—" if interval is None else f"{100 * interval.low:.1f}–{100 * interval.high:.1f}"


def pair_text(first: int | None, second: int | None) -> str:
    return "—" if first is None or second is None else f"{first}/{second}"


def usd_text(micro_usd: int | None) -> str:
    return "—" if micro_usd is None else format_usd(micro_usd)


def cost_clause(teacher_per_1k_micro_usd: int | None, distilled_per_1k_micro_usd: int | None) -> str:
    """' at 1/8 of the teacher's cost', from each model's cost per 1,000 answers ('' when either is unknown)."""
    if not teacher_per_1k_micro_usd or not distilled_per_1k_micro_usd:
        return ""
    ratio = distilled_per_1k_micro_usd / teacher_per_1k_micro_usd
    if ratio >= 1:
        return f" at {ratio:.1f}x the teacher's cost"
    if round(1 / ratio) >= 2:
        return f" at 1/{round(1 / ratio)} of the teacher's cost"
    return f" at {ratio:.0%} of the teacher's cost"


def p_text(p_value: float) -> str:
    return "p<0.001" if p_value < 0.001 else f"p={p_value:.3f}".rstrip("0").rstrip(".") if p_value < 1 else "p=1"


def baseline_verdict(teacher: float | None, base: float | None, test: Comparison, metric: str, show: Show,
                     points: Callable[[float], str]) -> str:
    """Teacher vs base student: is there a gap worth distilling? `points` writes the gap ('12.0 points')."""
    both = f"({show(teacher)} vs {show(base)} {metric}, {p_text(test.p_value)})"
    if not test.significant and test.close:
        return (f"The teacher and the base student are level within noise {both}: distilling may gain "
                "little over the base student alone.")
    if not test.significant:
        higher = "higher" if test.difference > 0 else "lower"
        return f"The teacher scores {higher} than the base student {both}, but {test.undecided()}."
    if test.difference > 0:
        return f"The teacher beats the base student by {points(test.difference)} {both}: a gap worth distilling."
    return f"The base student beats the teacher {both}: distilling from this teacher would not help."


def distilled_verdict(teacher: float | None, base: float | None, distilled: float | None, vs_base: Comparison,
                      vs_teacher: Comparison, metric: str, show: Show, cost: str, recovered: float | None) -> str:
    """Distilled student against the teacher, and against the base student when it stays below the teacher."""
    pair = f"{show(distilled)} vs {show(teacher)} {metric}, {p_text(vs_teacher.p_value)}"
    if not vs_teacher.significant and vs_teacher.close:
        return f"Distilled matches the teacher within noise ({pair}){cost}."
    if not vs_teacher.significant:
        side = "above" if vs_teacher.difference > 0 else "below"
        return f"Distilled scores {side} the teacher ({pair}){cost}; {vs_teacher.undecided()}."
    if vs_teacher.difference > 0:
        return f"Distilled beats the teacher ({pair}){cost}."
    versus_base = f"{show(distilled)} vs {show(base)}, {p_text(vs_base.p_value)}"
    if vs_base.significant and vs_base.difference > 0:
        share = f"; it recovers {recovered:.0%} of the gap" if recovered is not None else ""
        return (f"Distilled improves on the base student ({versus_base}) but stays below the teacher "
                f"({pair}){share}{cost}.")
    if vs_base.significant:
        return f"Distilled is worse than the base student ({versus_base}): distillation hurt."
    return (f"Distilled stays below the teacher ({pair}) and shows no clear gain over the base student "
            f"({versus_base}).")


def against_teacher_verdict(lead: str, base: float | None, vs_base: Comparison, show: Show, cost: str) -> str:
    """Without gold answers the teacher is the reference: `lead` says how the distilled student compares with it
    ('Distilled agrees with the teacher on 80.0% of the eval rows'), and the clause says which way it moved from the
    base student's."""
    against = f"{show(base)} for the base student, {p_text(vs_base.p_value)}"
    if not vs_base.significant:
        return f"{lead} (no clear change from the base student's {show(base)}, {p_text(vs_base.p_value)}){cost}."
    if vs_base.difference > 0:
        return f"{lead} (up from {against}){cost}."
    return f"{lead} (down from {against}): distillation hurt."
