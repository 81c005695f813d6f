"""`distill-bot demo`: the whole path from the bundled CSV to the eval table and chart (twice at once with the
default trainer, Together, whose deployment is priced once and whose distilled model's real cost shows; with the
OpenAI trainer; and with dicl, which fine-tunes nothing)."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path

from bot.cli.main import main
from tests.conftest import TODAY

ROOT = Path(__file__).resolve().parents[2]


async def _demo(*args: str, tmpdir: Path) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DISTILL_", "SLACK_", "OPENAI_", "TOGETHER_"))}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "demo", "--today", TODAY, *args, cwd=ROOT, env={**env, "TMPDIR": str(tmpdir)},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), 170)
    return process.returncode, out.decode(), err.decode()


def _check_story(out: str) -> Path:
    """The demo's story as a person reads it; returns the chart's path."""
    for step in ("alice@#general> /distill new tickets", "bob@#general> :click approve", "✅ Collection finished",
                 "alice@#general> /distill train tickets", "Training finished:", "bob@#general> :wait done 150"):
        assert step in out, step
    table = out[out.index("*Eval: teacher vs base student vs distilled student*"):]
    assert re.search(r"^ +teacher +base +distilled$", table, re.M), "the eval table has the three models"
    assert re.search(r"^ +Accuracy( +\d+\.\d%){3}$", table, re.M)
    assert "[file: eval-chart.png" in table
    assert "sandbox models" in out and "not the real ones" in out
    chart = Path(re.search(r"^Eval chart: +(\S+)$", out, re.M).group(1))
    assert chart.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    database = Path(re.search(r"^Database: +(\S+)$", out, re.M).group(1))
    assert database.is_file() and chart.is_relative_to(database.parent)
    return chart


def _check_together(out: str) -> None:
    """Together's part of the story: the deployment priced once, in the evaluate stage and the approved amount, then
    deleted, and the distilled model's cost per 1,000 answers what hosting it cost."""
    estimate = out[out.index("Estimate for tickets"):out.index("alice@#general> /distill collect tickets")]
    hosting = re.search(r"^ +evaluate +hosting +1xnvidia-h100-80gb +120 .* (\$\d+\.\d\d) +\$", estimate, re.M).group(1)
    train = re.search(r"^ +train +student +Qwen/Qwen3\.5-9B +300 .* (\$\d+\.\d\d) +\$", estimate, re.M).group(1)
    start = out.index("*Spending request: train*")
    request = out[start:out.index("» Needs 1 approval", start)]  # the request as first posted
    cap = float(train[1:]) + float(hosting[1:])
    assert f"at most *${cap:.2f}*" in request and request.count("from a dedicated deployment") == 1
    assert "sends n_epochs=3" in request and "expected to pick" not in out
    assert "Training: together: completed" in out and "Deleted the eval's dedicated deployment" in out
    table = out[out.index("*Eval: teacher vs base student vs distilled student*"):]
    distilled = re.search(r"^ +Cost per 1,000 +\S+ +\S+ +(\S+)$", table, re.M).group(1)
    assert distilled not in ("$0.00", "—")


async def test_two_demos_at_once_each_reach_the_eval_table_and_leave_their_own_chart(tmp_path):
    (status_a, out_a, err_a), (status_b, out_b, err_b) = await asyncio.gather(
        _demo(tmpdir=tmp_path),
        _demo("--dir", str(tmp_path / "named"), tmpdir=tmp_path))
    assert status_a == 0, err_a
    assert status_b == 0, err_b
    chart_a, chart_b = _check_story(out_a), _check_story(out_b)
    # Issue 19: APScheduler warned into the output whenever a poll outlasted the interval (6 times a demo).
    assert "maximum number of running instances" not in out_a + err_a + out_b + err_b
    assert chart_a.is_relative_to(tmp_path) and chart_b.is_relative_to(tmp_path / "named")
    _check_together(out_a)


async def test_the_demo_with_the_openai_trainer_trains_and_evaluates_gpt_4o_mini(tmp_path):
    status, out, err = await _demo("--trainer", "openai", tmpdir=tmp_path)
    assert status == 0, err
    _check_story(out)
    assert "/distill set tickets trainer=openai student=gpt-4o-mini-2024-07-18" in out
    assert "Training: openai: succeeded" in out and "dedicated deployment" not in out


async def test_the_demo_with_the_dicl_trainer_prompts_gpt_6_luna_with_the_teachers_nearest_examples(tmp_path):
    status, out, err = await _demo("--trainer", "dicl", tmpdir=tmp_path)
    assert status == 0, err
    _check_story(out)
    assert "/distill set tickets trainer=dicl student=gpt-6-luna" in out
    assert re.search(r"^ +train +embedding +text-embedding-3-small +300 ", out, re.M)
    assert "Training: dicl: indexed → gpt-6-luna+dicl(k=8)" in out and "dedicated deployment" not in out
    table = out[out.index("*Eval: teacher vs base student vs distilled student*"):]
    assert "distilled gpt-6-luna+dicl(k=8)" in table
    assert "[file: dicl-index.json" in table and "client.embeddings.create" in table


def test_a_demo_folder_that_already_holds_a_database_is_refused(tmp_path, capsys):
    (tmp_path / "distill.db").write_bytes(b"")
    assert main(["demo", "--dir", str(tmp_path)]) == 2
    assert "already holds a demo database; give a new --dir" in capsys.readouterr().err
