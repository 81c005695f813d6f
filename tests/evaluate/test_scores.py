"""Eval metrics against values worked out by hand on a small fixed example, and the tables built from them."""

from __future__ import annotations

import pytest

from bot.core.errors import StateError
from bot.evaluate.scores import (
    BASE,
    DISTILLED,
    TEACHER,
    baseline_for_run,
    baseline_table,
    eval_report,
    report_for_run,
)
from bot.evaluate.stats import mcnemar_exact_p, nearest_rank, wilson_interval
from handlers.packer import code_chunks
from storage.completions import Completion
from storage.runs import RunRow

# Ten eval rows. None is an invalid answer (not one of the choices).
GOLD = ["A", "A", "A", "A", "B", "B", "B", "C", "C", "C"]
ANSWERS = {
    TEACHER: ["A", "A", "A", "A", "B", "B", "B", "C", "C", "A"],  # 9 right (row 9 wrong)
    BASE: ["A", "B", "A", "C", "B", "A", "B", "C", "B", "A"],  # 5 right (rows 0, 2, 4, 6, 7)
    DISTILLED: ["A", "A", "A", "A", "B", "B", "A", "C", "C", None],  # 8 right (row 6 wrong, row 9 invalid)
}
MODELS = {TEACHER: "gpt-4o", BASE: "gpt-4o-mini-2024-07-18", DISTILLED: "ft:gpt-4o-mini-2024-07-18:org::abc"}
COST = {TEACHER: 240, BASE: 15, DISTILLED: 30}  # micro-USD per answer
LATENCY = [100, 200, 300, 400, 500, 600, 700, 800, 900, 1000]


def completions(roles=(TEACHER, BASE, DISTILLED), run_id: int = 1) -> list[Completion]:
    found = []
    for role in roles:
        for row, label in enumerate(ANSWERS[role]):
            found.append(Completion(
                run_id=run_id, row_index=row, split="eval", role=role, model=MODELS[role], request_hash=f"{role}{row}",
                status="ok" if label else "invalid", parsed_label=label, cost_micro_usd=COST[role],
                latency_ms=LATENCY[row], raw_output='{"label":"%s"}' % (label or "D"),
            ))
    return found


def eval_rows(labelled: bool = True) -> list[RunRow]:
    return [RunRow("eval", i, f"h{i}", gold if labelled else None) for i, gold in enumerate(GOLD)]


def test_wilson_interval_matches_published_values():
    # Wilson score interval, z = 1.96: centre (p + z²/2n) / (1 + z²/n), half-width
    # z·sqrt(p(1-p)/n + z²/4n²) / (1 + z²/n). For 8/10 that is 0.7163 ± 0.2266.
    for (k, n), (low, high) in {(9, 10): (0.5958, 0.9821), (5, 10): (0.2366, 0.7634), (8, 10): (0.4902, 0.9433),
                                (0, 10): (0.0, 0.2775), (10, 10): (0.7225, 1.0)}.items():
        interval = wilson_interval(k, n)
        assert (round(interval.low, 4), round(interval.high, 4)) == (low, high)
    assert wilson_interval(0, 0) is None


def test_mcnemar_is_an_exact_two_sided_binomial_test_on_discordant_pairs():
    assert mcnemar_exact_p(4, 0) == 2 * 1 / 2**4  # 0.125
    assert mcnemar_exact_p(4, 1) == 2 * (1 + 5) / 2**5  # 0.375
    assert mcnemar_exact_p(1, 4) == mcnemar_exact_p(4, 1)
    assert mcnemar_exact_p(10, 0) == 2 / 1024
    assert mcnemar_exact_p(3, 3) == 1.0 and mcnemar_exact_p(0, 0) == 1.0


def test_nearest_rank_percentiles_are_observed_values():
    # rank = ceil(p/100 x n): of 10 values p50 is the 5th and p95 the 10th; of 3, p50 is the 2nd
    assert (nearest_rank(LATENCY, 50), nearest_rank(LATENCY, 95)) == (500, 1000)
    assert nearest_rank([30, 10, 20], 50) == 20 and nearest_rank([], 50) is None


def test_report_metrics_on_the_fixed_example():
    report = eval_report(eval_rows(), completions())
    teacher, base, distilled = (report.scores[r] for r in (TEACHER, BASE, DISTILLED))
    assert (teacher.accuracy, base.accuracy, distilled.accuracy) == (0.9, 0.5, 0.8)
    ci = distilled.accuracy_ci
    assert (round(ci.low, 4), round(ci.high, 4)) == (0.4902, 0.9433)
    # Macro-F1 by hand, F1 = 2TP / (2TP + FP + FN) per label:
    # distilled A: TP 4, FP 1 (row 6) -> 8/9; B: TP 2, FN 1 (row 6) -> 4/5; C: TP 2, FN 1 (row 9 invalid) -> 4/5
    assert distilled.macro_f1 == pytest.approx((8 / 9 + 4 / 5 + 4 / 5) / 3)
    # base A: TP 2, FP 2 (rows 5, 9), FN 2 (rows 1, 3) -> 1/2; B: TP 2, FP 2 (rows 1, 8), FN 1 (row 5) -> 4/7;
    # C: TP 1, FP 1 (row 3), FN 2 (rows 8, 9) -> 2/5
    assert base.macro_f1 == pytest.approx((1 / 2 + 4 / 7 + 2 / 5) / 3)
    assert teacher.macro_f1 == pytest.approx((8 / 9 + 1 + 4 / 5) / 3)
    # agreement with the teacher: base matches it on rows 0, 2, 4, 6, 7, 9; distilled on 0-5, 7, 8
    assert (base.agreement, distilled.agreement) == (0.6, 0.8)
    assert (distilled.invalid, distilled.invalid_rate, distilled.unanswered) == (1, 0.1, 0)
    # nearest rank over ten latencies: p50 is the 5th value, p95 the 10th
    assert (distilled.latency_p50_ms, distilled.latency_p95_ms) == (500, 1000)
    assert (teacher.cost_per_1k_micro_usd, distilled.cost_per_1k_micro_usd) == (240_000, 30_000)

    vs_base, vs_teacher = report.tests
    # distilled right and base wrong on rows 1, 3, 5, 8; base right and distilled wrong on row 6
    assert (vs_base.first_only, vs_base.second_only, vs_base.p_value) == (4, 1, 0.375)
    # distilled right where the teacher is wrong: none; the reverse: row 6
    assert (vs_teacher.first_only, vs_teacher.second_only, vs_teacher.p_value) == (0, 1, 1.0)
    assert report.gap_recovered == pytest.approx((0.8 - 0.5) / (0.9 - 0.5))
    # 10 points apart but p=1: too few rows to call it either way, and the verdict says so
    assert report.verdict == ("Distilled scores below the teacher (80.0% vs 90.0% accuracy, p=1) at 1/8 of the "
                              "teacher's cost; 10 eval rows are too few to confirm the difference (raise eval for a "
                              "firmer answer).")


def test_baseline_table_compares_teacher_and_base_student():
    table = baseline_table(eval_rows(), completions((TEACHER, BASE)))
    (test,) = table.tests
    # the teacher alone is right on rows 1, 3, 5, 8; the base student alone on none
    assert (test.first_only, test.second_only, test.p_value) == (4, 0, 0.125)
    assert table.verdict == ("The teacher scores higher than the base student (90.0% vs 50.0% accuracy, p=0.125), "
                             "but 10 eval rows are too few to confirm the difference (raise eval for a firmer answer).")
    text = table.to_text()
    assert "Accuracy" in text and "59.6–98.2" in text and "23.7–76.3" in text and "distilled" not in text


def test_without_gold_labels_everything_is_measured_against_the_teacher():
    report = eval_report(eval_rows(labelled=False), completions())
    assert report.scores[DISTILLED].accuracy is None and report.scores[DISTILLED].macro_f1 is None
    (vs_base,) = report.tests
    # agreeing with the teacher: distilled alone on rows 1, 3, 5, 8; base alone on rows 6 and 9
    assert (vs_base.reference, vs_base.first_only, vs_base.second_only) == ("teacher", 4, 2)
    assert vs_base.p_value == 2 * (1 + 6 + 15) / 2**6
    assert report.gap_recovered == pytest.approx((0.8 - 0.6) / (1 - 0.6))
    assert report.verdict.startswith("Distilled agrees with the teacher on 80.0% of the eval rows (no clear change")
    assert "Accuracy" not in report.to_text() and "No gold labels" in report.to_text()
    baseline = baseline_table(eval_rows(labelled=False), completions((TEACHER, BASE)))
    assert baseline.tests == [] and "agrees with the teacher on 60.0%" in baseline.verdict


def synthetic(rows: int, right: dict[str, range]) -> tuple[list[RunRow], list[Completion]]:
    """Every gold label is A; each role answers A on the rows in its range and B elsewhere."""
    answers = [Completion(run_id=1, row_index=i, split="eval", role=role, model=MODELS[role], request_hash=f"{role}{i}",
                          status="ok", parsed_label="A" if i in right[role] else "B", cost_micro_usd=COST[role])
               for role in right for i in range(rows)]
    return [RunRow("eval", i, f"h{i}", "A") for i in range(rows)], answers


@pytest.mark.parametrize(
    ("right", "verdict"),
    [
        # teacher alone right on 2 rows (p=0.5) and 2.5 points apart: a match
        ({TEACHER: range(38), BASE: range(20), DISTILLED: range(36)},
         "Distilled matches the teacher within noise (90.0% vs 95.0% accuracy, p=0.5) at 1/8 of the teacher's cost."),
        # distilled alone right on 25 rows against the base, the teacher alone on 13: (45-20)/(58-20) = 66%
        ({TEACHER: range(58), BASE: range(20), DISTILLED: range(45)},
         "Distilled improves on the base student (75.0% vs 33.3%, p<0.001) but stays below the teacher (75.0% vs "
         "96.7% accuracy, p<0.001); it recovers 66% of the gap at 1/8 of the teacher's cost."),
        ({TEACHER: range(40), BASE: range(20), DISTILLED: range(58)},
         "Distilled beats the teacher (96.7% vs 66.7% accuracy, p<0.001) at 1/8 of the teacher's cost."),
        ({TEACHER: range(58), BASE: range(50), DISTILLED: range(20)},
         "Distilled is worse than the base student (33.3% vs 83.3%, p<0.001): distillation hurt."),
        ({TEACHER: range(58), BASE: range(20), DISTILLED: range(24)},
         "Distilled stays below the teacher (40.0% vs 96.7% accuracy, p<0.001) and shows no clear gain over the "
         "base student (40.0% vs 33.3%, p=0.125)."),
    ],
)
def test_verdict_in_plain_words(right, verdict):
    rows, answers = synthetic(60 if max(r.stop for r in right.values()) > 40 else 40, right)
    assert eval_report(rows, answers).verdict == verdict


def test_gap_recovered_is_undefined_when_teacher_and_base_score_the_same():
    same = [c if c.role != BASE else Completion(**{**c.__dict__, "parsed_label": ANSWERS[TEACHER][c.row_index]})
            for c in completions()]
    report = eval_report(eval_rows(), same)
    assert report.gap_recovered is None
    assert "Gap recovered: undefined" in report.to_text()
    assert report.to_dict()["gap_recovered"] is None


def test_text_is_aligned_and_fits_slack_sections_as_the_handlers_pack_it():
    report = eval_report(eval_rows(), completions())
    table = report.table_lines()
    assert len({len(line) for line in table}) == 1  # every row as wide as the header
    assert table[0].split() == ["teacher", "base", "distilled"]
    accuracy = next(line for line in table if line.startswith("Accuracy"))
    assert accuracy.split()[1:] == ["90.0%", "50.0%", "80.0%"]
    sections = code_chunks([*report.body_lines(), *report.label_lines()])
    assert all(len(s) <= 3000 and s.startswith("```") and s.endswith("```") for s in sections)
    assert "F1 by label" in sections[-1]
    small = code_chunks([*report.body_lines(), *report.label_lines()], limit=400)
    assert len(small) > 2 and all(len(s) <= 400 for s in small)
    data = report.to_dict()
    assert data["kind"] == "eval" and data["models"][DISTILLED]["accuracy_ci"]["low"] == pytest.approx(0.4902, 1e-3)


async def test_built_from_stored_answers_and_refused_before_the_stage_ran(storage):
    run = await storage.runs.create(name="r", channel_id="C1", requester="U1", spec={})
    await storage.runs.replace_rows(run.id, eval_rows())
    await storage.completions.save_many(completions((TEACHER, BASE), run_id=run.id))
    baseline = await baseline_for_run(storage, run.id)
    assert baseline.scores[BASE].correct == 5
    with pytest.raises(StateError, match="from the distilled"):
        await report_for_run(storage, run.id)
    await storage.completions.save_many(completions((DISTILLED,), run_id=run.id))
    assert (await report_for_run(storage, run.id)).scores[DISTILLED].correct == 8


def unlabelled(rows: int, agreeing: dict[str, range]) -> tuple[list[RunRow], list[Completion]]:
    """No gold labels; the teacher answers A everywhere, the students A on the rows in their range, B elsewhere."""
    answers = [Completion(run_id=1, row_index=i, split="eval", role=role, model=MODELS[role], request_hash=f"{role}{i}",
                          status="ok", parsed_label="A" if role == TEACHER or i in agreeing[role] else "B",
                          cost_micro_usd=COST[role])
               for role in (TEACHER, BASE, DISTILLED) for i in range(rows)]
    return [RunRow("eval", i, f"h{i}", None) for i in range(rows)], answers


@pytest.mark.parametrize(
    ("agreeing", "verdict", "card"),
    [
        # the case: agreement fell from 48.5% to 12.0% of 200 rows; it must not say "up from"
        ({BASE: range(97), DISTILLED: range(24)},
         "Distilled agrees with the teacher on 12.0% of the eval rows (down from 48.5% for the base student, "
         "p<0.001): distillation hurt.",
         "base student 48.5% · distilled 12.0% (down 36.5 points from the base student)"),
        ({BASE: range(24), DISTILLED: range(97)},
         "Distilled agrees with the teacher on 48.5% of the eval rows (up from 12.0% for the base student, p<0.001) "
         "at 1/8 of the teacher's cost.",
         "base student 12.0% · distilled 48.5% (up 36.5 points from the base student)"),
    ],
)
def test_an_unlabelled_verdict_and_card_say_which_way_agreement_moved(agreeing, verdict, card):
    from bot.runs.cards import eval_figure

    report = eval_report(*unlabelled(200, agreeing))
    assert report.verdict == verdict
    name, shown = eval_figure({role: report.role_metrics(role) for role in report.scores})
    assert (name, shown) == ("Agreement with the teacher", card)
