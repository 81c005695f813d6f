"""`distill-bot estimate`: the quote in the terminal, as a table or one JSON object."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

from bot.cli.main import main

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = Path(__file__).parents[1] / "fixtures" / "cookbook_wine_template.txt"


def write_tickets(path: Path) -> Path:
    labels = ["Billing", "Network", "Access"] * 30 + ["Printer"] * 2
    lines = ["text;category"] + [f"Ticket {i}: help with {label.lower()} please;{label}" for i, label in
                                 enumerate(labels)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_the_table_shows_each_stage_the_rows_and_the_totals(tmp_path, capsys):
    csv = write_tickets(tmp_path / "tickets.csv")
    assert main(["estimate", str(csv), "--label", "category", "--train", "60", "--eval", "20", "--system",
                 "Sort IT tickets.", "--trainer", "openai", "--student", "gpt-4o-mini-2024-07-18"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("tickets.csv: 92 rows; train 60, eval 20; left out 2 (rare_label: 2)\n")
    table = out.split("\n\n")[1].splitlines()
    assert table[0].split() == ["stage", "role", "model", "rows", "prompt", "tok", "completion", "tok", "trained",
                                "tok", "USD", "USD", "batch", "at", "most"]
    assert [line.split()[:4] for line in table[1:5]] == [
        ["collect", "teacher", "gpt-6.2-sol", "80"], ["collect", "student", "gpt-4o-mini-2024-07-18", "20"],
        ["train", "student", "gpt-4o-mini-2024-07-18", "60"], ["evaluate", "distilled", "ft:gpt-4o-mini-2024-07-18",
                                                                "20"]]
    assert table[5].startswith("total")
    assert "train: 3 epochs of a" in out and "epochs=auto: OpenAI picks 1-25" in out
    assert "price gpt-6.2-sol: as of 2026-11-29, https://developers.openai.com/api/docs/models/gpt-6.2-sol.md" in out


def test_by_default_the_student_trains_at_together_and_its_deployment_is_priced_in_the_evaluate_stage(tmp_path,
                                                                                                      capsys):
    csv = write_tickets(tmp_path / "tickets.csv")
    assert main(["estimate", str(csv), "--label", "category", "--train", "60", "--eval", "20"]) == 0
    out = capsys.readouterr().out
    table = out.split("\n\n")[1].splitlines()
    assert [line.split()[:4] for line in table[1:6]] == [
        ["collect", "teacher", "gpt-6.2-sol", "80"], ["collect", "student", "Qwen/Qwen3.5-9B", "20"],
        ["train", "student", "Qwen/Qwen3.5-9B", "60"], ["evaluate", "distilled", "ft:Qwen/Qwen3.5-9B", "20"],
        ["evaluate", "hosting", "1xnvidia-h100-80gb", "20"]]
    # Together's $4.00 minimum for the job; 10 + 1 + 1 minutes of one H100 at $3.99 an hour for the eval.
    assert table[3].split()[-2:] == ["$4.00", "$4.00"] and table[5].split()[-2:] == ["$0.80", "$0.80"]
    assert "epochs=auto: Together has no automatic choice of epochs, so the bot sends n_epochs=3" in out
    assert "OpenAI picks" not in out and "expected to pick" not in out  # OpenAI's epochs wording is not Together's
    assert "= 12 minutes, $0.80" in out and "price dedicated:1xnvidia-h100-80gb: as of 2026-09-09" in out


def test_json_has_tokens_and_usd_per_stage_and_in_total_and_the_rows_left_out(tmp_path, capsys):
    csv = write_tickets(tmp_path / "tickets.csv")
    choices = tmp_path / "choices.txt"
    choices.write_text("Billing\nNetwork\n")
    assert main(["estimate", str(csv), "--label", "category", "--train", "40", "--eval", "10", "--choices-file",
                 str(choices), "--teacher", "gpt-4.1", "--student", "gpt-4.1-nano-2025-04-14", "--trainer", "openai",
                 "--json"]) == 0
    quote = json.loads(capsys.readouterr().out)
    assert [s["name"] for s in quote["stages"]] == ["collect", "train", "evaluate"]
    assert quote["stages"][0]["lines"][0]["model"] == "gpt-4.1" and quote["stages"][2]["lines"][0]["model"] == \
        "ft:gpt-4.1-nano-2025-04-14"
    assert quote["rows"]["left_out"] == {"not_a_choice": 32} and quote["rows"]["choices"] == ["Billing", "Network"]
    total = quote["total"]
    assert total["cost_micro_usd"] == sum(s["cost_micro_usd"] for s in quote["stages"]) > 0
    assert total["cost_usd"].startswith("$") and total["prompt_tokens"] > 0 and len(quote["quote_hash"]) == 64


def test_the_cookbook_template_file_is_used_as_is(shared_dir, capsys):
    csv = shared_dir / "data" / "wine-reviews-france.csv"
    assert main(["estimate", str(csv), "--label", "variety", "--template-file", str(TEMPLATE), "--train", "450",
                 "--eval", "50", "--json"]) == 0
    quote = json.loads(capsys.readouterr().out)
    assert quote["file"] == "wine-reviews-france.csv" and quote["stages"][0]["lines"][0]["rows"] == 500
    assert quote["warnings"] == ["Columns without a name were called Unnamed: 0."]


def test_bad_input_exits_non_zero_with_the_message_the_bot_would_post(tmp_path):
    csv = write_tickets(tmp_path / "tickets.csv")
    cases = [
        (["--label", "categroy"], "error: Label column 'categroy' not found. Columns: text, category. Did you mean"),
        (["--label", "category", "--train", "five"], "train: expected a whole number from 10 to 10,000,000"),
        (["--label", "category", "--student", "gpt-4o", "--trainer", "openai"], "no training price for gpt-4o"),
        (["--label", "category", "--student", "gpt-4o"], "knows no Together student called gpt-4o. Students it "
                                                         "fine-tunes and serves: Qwen/Qwen3.5-9B"),
        (["--label", "category", "--student", "meta-llama/Meta-Llama-3.1-8B-Instruct-Reference"],
         "names no dedicated hardware that serves its fine-tunes"),
        (["--label", "category", "--trainer", "colab"], "trainer: expected one of together, openai"),
    ]
    for extra, expected in cases:
        result = subprocess.run([sys.executable, "-m", "bot", "estimate", str(csv), *extra], capture_output=True,
                                text=True, cwd=ROOT, check=False)
        assert result.returncode == 2 and expected in result.stderr, (extra, result.stderr)
        assert result.stdout == ""


def test_a_missing_or_oversized_file_is_refused(tmp_path, capsys, monkeypatch):
    assert main(["estimate", str(tmp_path / "none.csv"), "--label", "x"]) == 2
    assert "Cannot read" in capsys.readouterr().err
    big = tmp_path / "big.csv"
    big.write_bytes(b"text,label\n" + b"x,y\n" * 300_000)
    monkeypatch.setenv("DISTILL_MAX_CSV_MB", "1")
    assert main(["estimate", str(big), "--label", "label"]) == 2
    assert "big.csv is 1.1 MB, over the 1.0 MB limit (DISTILL_MAX_CSV_MB)" in capsys.readouterr().err


def test_a_reasoning_teacher_shows_the_expected_cost_and_the_most_it_can_cost(tmp_path, capsys):
    csv = write_tickets(tmp_path / "tickets.csv")
    args = ["estimate", str(csv), "--label", "category", "--train", "60", "--eval", "20", "--teacher",
            "gpt-6.1-terra", "--teacher-effort", "low"]
    assert main(args) == 0
    out = capsys.readouterr().out
    teacher = next(line.split() for line in out.splitlines() if line.startswith("collect   teacher"))
    expected, most = teacher[-3], teacher[-1]
    assert float(most.strip("$")) > 20 * float(expected.strip("$"))
    assert "cost: expected (reasoning not measured yet: the answers only) $" in out and "; at most $" in out
    assert "gpt-6.1-terra reasons at effort low: reasoning is not measured yet" in out
    assert main([*args, "--json"]) == 0
    quote = json.loads(capsys.readouterr().out)
    [line] = [x for x in quote["stages"][0]["lines"] if x["role"] == "teacher"]
    assert (line["effort"], line["reasoning"], line["reasoning_tokens"]) == ("low", "not measured", 0)
    assert line["max_cost_micro_usd"] > line["cost_micro_usd"] > 0
    assert quote["total"]["max_cost_micro_usd"] > quote["total"]["cost_micro_usd"]
    [reasoning] = quote["reasoning"]
    assert (reasoning["model"], reasoning["effort"], reasoning["measured"]) == ("gpt-6.1-terra", "low", False)
    assert reasoning["max_completion_tokens"] == line["max_completion_tokens"] // line["rows"]


def test_an_effort_the_teacher_does_not_take_exits_with_the_ones_it_takes(tmp_path):
    csv = write_tickets(tmp_path / "tickets.csv")
    result = subprocess.run([sys.executable, "-m", "bot", "estimate", str(csv), "--label", "category",
                             "--teacher", "gpt-6.2-sol", "--teacher-effort", "none"], capture_output=True, text=True,
                            cwd=ROOT, check=False)
    assert result.returncode == 2
    assert "gpt-6.2-sol takes low, medium, high, xhigh, max (default here: low)" in result.stderr


async def test_pilot_measures_the_reasoning_at_the_provider_and_the_estimate_expects_it(tmp_path, openai_sandbox):
    csv = write_tickets(tmp_path / "tickets.csv")
    env = {**os.environ, "OPENAI_BASE_URL": openai_sandbox.url, "OPENAI_API_KEY": openai_sandbox.api_key}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "estimate", str(csv), "--label", "category", "--train", "60", "--eval", "20",
        "--pilot", "12", "--json", cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    quote = json.loads(out)
    paid = [r for r in openai_sandbox.requests.paid() if r.model == "gpt-6.2-sol"]
    assert len(paid) == 12
    pilot = quote["pilot"]
    assert (pilot["model"], pilot["effort"], pilot["rows"], pilot["answered"]) == ("gpt-6.2-sol", "low", 12, 12)
    assert pilot["mean_reasoning_tokens"] > 0 and pilot["p90_reasoning_tokens"] >= pilot["mean_reasoning_tokens"] - 1
    assert 0 < pilot["cost_micro_usd"] <= pilot["max_micro_usd"]
    [reasoning] = quote["reasoning"]
    assert reasoning["measured"] and reasoning["pilot_rows"] == 12
    teacher = quote["stages"][0]["lines"][0]
    assert teacher["reasoning"] == "measured"
    assert teacher["reasoning_tokens"] == round(pilot["mean_reasoning_tokens"] * teacher["rows"])
    assert any(note.startswith("gpt-6.2-sol reasons at effort low: expected from a pilot of 12 rows: ")
               for note in quote["notes"])
