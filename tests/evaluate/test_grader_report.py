"""Grading a run's eval split and the per-grader report, against values worked out by hand on a fixed example."""

from __future__ import annotations

import dataclasses
import json

import pytest

from bot.costs.quotes import estimate
from bot.data.splits import PreparedRow, prepare
from bot.evaluate.grader_report import build_report, compare, figure, pairwise_figure
from bot.evaluate.grading import ROLES, EvalAnswers, eval_answers, grade, judge_calls, judge_max_micro_usd, judge_role
from bot.evaluate.scores import BASE, DISTILLED, TEACHER
from bot.evaluate.stats import bootstrap_mean_interval, paired_bootstrap
from bot.graders.base import Grade
from bot.prices.table import PriceTable
from bot.prompts.answers import AnswerFormat
from bot.spec.settings import RunSpec
from storage.completions import Completion

GOLD = [f"... so the answer is\n#### {n}" for n in range(10)]
RIGHT = {TEACHER: {0, 1, 2, 3, 4, 5, 6, 7}, BASE: {0, 1, 2, 3}, DISTILLED: {0, 1, 2, 4, 5, 6, 8}}
MODELS = {TEACHER: "gpt-4o", BASE: "gpt-4o-mini-2024-07-18", DISTILLED: "ft:gpt-4o-mini-2024-07-18:o::x"}
SPEC = RunSpec(task="generate", reference="answer", graders=("numeric", "score_model", "pairwise"),
               teacher="gpt-4o", student="gpt-4o-mini-2024-07-18")


def rows() -> list[PreparedRow]:
    return [PreparedRow(i, f"Question {i}?", f"h{i}", GOLD[i]) for i in range(10)]


def answers(roles=ROLES) -> list[Completion]:
    """Each model answers every row: the gold number on its RIGHT rows, 99 elsewhere."""
    return [Completion(run_id=1, row_index=i, split="eval", role=role, model=MODELS[role], request_hash=f"{role}{i}",
                       status="ok", parsed_label=f"#### {i if i in RIGHT[role] else 99}", cost_micro_usd=10,
                       latency_ms=100) for role in roles for i in range(10)]


def judgment(role: str, row: int, reply: str, status: str = "ok") -> Completion:
    return Completion(run_id=1, row_index=row, split="eval", role=role, model="gpt-4o", request_hash=f"{role}{row}",
                      status=status, parsed_label=reply if status == "ok" else None, cost_micro_usd=3)


def test_the_numeric_pass_rates_intervals_and_mcnemar_by_hand():
    report = build_report("eval", dataclasses.replace(SPEC, graders=("numeric",)), rows(), answers())
    numeric = report.figures["numeric"]
    assert [numeric[r].value for r in ROLES] == [0.8, 0.4, 0.7]
    interval = numeric[TEACHER].interval  # Wilson, 8 of 10 (as in tests/evaluate/test_scores.py)
    assert (round(interval.low, 4), round(interval.high, 4)) == (0.4902, 0.9433)
    vs_base, vs_teacher = report.tests
    # distilled alone right on rows 4, 5, 6, 8; base alone on row 3 -> McNemar 2(1+5)/2^5; vs teacher: 8 vs 3 and 7
    assert (vs_base.difference, vs_base.p_value) == (pytest.approx(0.3), 0.375)
    assert (vs_teacher.difference, vs_teacher.p_value) == (pytest.approx(-0.1), 1.0)
    assert report.gap_recovered == pytest.approx((0.7 - 0.4) / (0.8 - 0.4))
    assert report.verdict.startswith("Distilled scores below the teacher (70.0% vs 80.0% numeric pass rate, p=1)")


def test_means_get_a_seeded_bootstrap_interval_and_paired_tests_a_paired_bootstrap():
    scores = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
    found = figure({i: Grade(s) for i, s in enumerate(scores)})
    assert (found.kind, found.value) == ("mean", pytest.approx(0.55))
    assert found.interval == bootstrap_mean_interval(scores)  # the same every time
    assert found.interval.low < 0.55 < found.interval.high
    shifted = paired_bootstrap([s + 0.1 for s in scores], scores)  # every row 0.1 higher: certain
    assert shifted.difference == pytest.approx(0.1) and shifted.p_value == pytest.approx(1 / 2000)
    assert paired_bootstrap(scores, scores).p_value == 1.0
    test = compare("rouge_l", {DISTILLED: {i: Grade(s + 0.1) for i, s in enumerate(scores)},
                               BASE: {i: Grade(s) for i, s in enumerate(scores)}}, DISTILLED, BASE)
    assert test.method == "paired bootstrap" and test.significant


def test_pairwise_counts_wins_ties_and_losses_and_the_adjusted_rate():
    found = pairwise_figure({0: "win", 1: "win", 2: "tie", 3: "loss", 4: None})
    assert (found.wins, found.ties, found.losses, found.unread) == (2, 1, 1, 1)
    assert found.rate("win") == 0.5 and found.adjusted == pytest.approx((2 + 0.5) / 4)
    assert found.interval("win") is not None


def test_the_judge_is_asked_once_per_answer_and_grader_and_twice_per_pairwise_row():
    graded = eval_answers(rows(), answers())
    calls = judge_calls(SPEC, graded, ROLES)
    by_role: dict[str, int] = {}
    for call in calls:
        by_role[call.role] = by_role.get(call.role, 0) + 1
    assert by_role == {judge_role("score_model", r): 10 for r in ROLES} | {
        judge_role("pairwise", r, o): 10 for r in (BASE, DISTILLED) for o in ("ab", "ba")}
    assert {c.answer for c in calls if c.role.startswith("judge:pairwise")} == {AnswerFormat("generate")}
    # a row the model did not answer is graded 0 without asking the judge
    missing = EvalAnswers(graded.rows, {**graded.answers, BASE: {**graded.answers[BASE], 3: None}})
    assert len(judge_calls(SPEC, missing, ROLES)) == len(calls) - 1 - 2
    # before the distilled model answers, the most counts its answers at their budget
    prices = PriceTable.load()
    without = EvalAnswers(graded.rows, {r: a for r, a in graded.answers.items() if r != DISTILLED})
    assert judge_max_micro_usd(1, SPEC, without, prices, {DISTILLED: 500}) > judge_max_micro_usd(
        1, SPEC, without, prices, {DISTILLED: 1})


def test_grades_come_from_the_stored_judgments():
    stored = answers()
    for role in ROLES:
        for row in range(10):
            stored.append(judgment(judge_role("score_model", role), row, json.dumps(
                {"steps": [], "result": 1.0 if row in RIGHT[role] else 0.25})))
    stored[-1] = judgment(judge_role("score_model", DISTILLED), 9, "", status="failed")  # never judged
    for row in range(10):
        stored += [judgment(judge_role("pairwise", DISTILLED, "ab"), row, "[[A]]" if row < 4 else "[[C]]"),
                   judgment(judge_role("pairwise", DISTILLED, "ba"), row, "[[B]]" if row < 2 else "[[A]]")]
    graded = grade(SPEC, eval_answers(rows(), stored), stored)
    score = graded.grades["score_model"]
    assert score[TEACHER][3].score == 1.0 and score[BASE][5].score == 0.25 and not score[DISTILLED][9].graded
    # rows 0-1: A then B = a win in both orders; 2-3: A then A = position bias, a tie; 4-9: a tie in the first order
    assert [graded.pairwise[DISTILLED][r] for r in range(10)] == ["win", "win"] + ["tie"] * 8
    assert graded.pairwise[BASE] == dict.fromkeys(range(10))  # never judged: left out
    assert graded.judge_micro_usd == 3 * (len(stored) - 30)
    report = build_report("eval", SPEC, rows(), stored)
    assert report.figures["score_model"][DISTILLED].graded == 9 and report.pairwise[DISTILLED].adjusted == 0.6
    assert "score_model: 1 answers could not be graded: not judged (the judge's request failed" in report.to_text()


def test_without_a_reference_the_teacher_is_it_and_the_verdict_says_which_way_the_student_moved():
    spec = RunSpec(task="generate", graders=("numeric",), teacher="gpt-4o", student="gpt-4o-mini-2024-07-18")
    unlabelled = [PreparedRow(i, f"Question {i}?", f"h{i}", None) for i in range(40)]
    stored = [Completion(run_id=1, row_index=i, split="eval", role=role, model=MODELS[role], request_hash=f"{role}{i}",
                         status="ok", parsed_label=f"#### {i if role == TEACHER or i < cut else 99}",
                         cost_micro_usd=10) for role, cut in ((TEACHER, 0), (BASE, 30), (DISTILLED, 5))
              for i in range(40)]
    report = build_report("eval", spec, unlabelled, stored)
    assert set(report.figures["numeric"]) == {BASE, DISTILLED}  # the teacher is the reference
    assert report.verdict == ("Distilled scores 12.5% (numeric pass rate against the teacher's answers) (down from "
                              "75.0% for the base student, p<0.001): distillation hurt.")


def test_the_estimate_prices_the_judge_in_the_evaluate_stage():
    columns = ["question", "answer"]
    data = {i: {"question": f"Tom has {i} apples and buys 3 more. How many apples does he have?",
                "answer": f"{i}+3 = <<{i}+3={i + 3}>>{i + 3}\n#### {i + 3}"} for i in range(60)}
    spec = RunSpec(task="generate", reference="answer", graders=("numeric", "score_model", "pairwise"),
                   train_size=40, eval_size=20, teacher="gpt-4o", student="gpt-4o-mini-2024-07-18", trainer="openai")
    quote = estimate(prepare(spec, columns, data), spec, PriceTable.load())
    [judge] = [line for line in quote.stage("evaluate").lines if line.role == "judge"]
    assert judge.rows == 20 * 3 + 20 * 4  # score_model for 3 models, pairwise for 2 students in 2 orders
    assert 0 < judge.cost_micro_usd < judge.max_cost_micro_usd
    assert any("The model graders' judge (gpt-4o) answers 140 requests" in note for note in quote.notes)
    plain = dataclasses.replace(spec, graders=("numeric",))
    assert all(line.role != "judge" for line in estimate(prepare(plain, columns, data), plain,
                                                         PriceTable.load()).stage("evaluate").lines)
