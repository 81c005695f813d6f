"""`distill-bot estimate`: what a run on a CSV would cost, stage by stage, without Slack.

The spec goes through the same `key=value` parsers as `/distill set`, so a bad value gets the same message
the bot would post. Each line shows the expected cost and the most it can cost; for a reasoning teacher the
expected reasoning comes from a pilot (`--pilot N`, which spends: it asks the teacher at OPENAI_BASE_URL),
and without one the estimate says it is not measured.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from bot.core.config import Settings

if TYPE_CHECKING:
    from bot.costs.quotes import Quote
    from bot.data.splits import PreparedRun
    from bot.prices.table import PriceTable
    from bot.spec.settings import RunSpec
    from storage.pilots import Pilot

# Option -> the `/distill set` key it fills.
_OPTIONS = {
    "label": "label",
    "system": "system",
    "train": "train",
    "eval": "eval",
    "teacher": "teacher",
    "student": "student",
    "trainer": "trainer",
    "min_per_label": "min_per_label",
    "teacher_effort": "teacher_effort",
    "max_answer_tokens": "max_answer_tokens",
    "k": "k",
    "embedding_model": "embedding_model",
}


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("csv", type=Path, metavar="CSV", help="the examples, one per row, with a header row")
    parser.add_argument("--label", required=True, metavar="COLUMN", help="column holding the right answer")
    parser.add_argument("--template-file", type=Path, metavar="F",
                        help="prompt template with {column} placeholders and {choices} (default: every column)")
    parser.add_argument("--system", metavar="TEXT", help="system prompt sent before each row")
    parser.add_argument("--train", metavar="N", help="rows the teacher labels for training (default 500)")
    parser.add_argument("--eval", metavar="N", help="held-out rows every model is scored on (default 200)")
    parser.add_argument("--teacher", metavar="M", help="teacher model (default: $DISTILL_TEACHER_MODEL)")
    parser.add_argument("--student", metavar="M", help="student base model (default: $DISTILL_STUDENT_MODEL)")
    parser.add_argument("--trainer", metavar="T", help="where the student is fine-tuned: together or openai, or dicl "
                                                      "(no fine-tuning: the teacher's nearest examples in the "
                                                      "student's prompt; default: $DISTILL_TRAINER)")
    parser.add_argument("--teacher-effort", metavar="E",
                        help="the teacher's reasoning_effort (none, minimal, low, medium, high, xhigh, max), as its "
                             "model takes; default: the cheapest it takes")
    parser.add_argument("--max-answer-tokens", metavar="N",
                        help="most completion tokens per answer, reasoning included (default: the answer's size "
                             "plus the effort's reasoning allowance)")
    parser.add_argument("--k", metavar="N", help="trainer=dicl: teacher examples in each prompt (default 8)")
    parser.add_argument("--embedding-model", metavar="M",
                        help="trainer=dicl: the model that embeds inputs (default text-embedding-3-small)")
    parser.add_argument("--pilot", type=int, metavar="N",
                        help="SPENDS MONEY: first have the teacher answer the first N train rows at OPENAI_BASE_URL "
                             "(needs OPENAI_API_KEY; at most N answers at their whole token budget, printed) and "
                             "expect the reasoning it measured")
    parser.add_argument("--min-per-label", metavar="K", help="leave out labels with fewer rows (default 5)")
    parser.add_argument("--choices-file", type=Path, metavar="F", help="allowed labels, one per line")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")


def run(args: argparse.Namespace, settings: Settings) -> int:
    from bot.collect.preflight import expectation
    from bot.core.errors import DatasetError
    from bot.costs.quotes import estimate
    from bot.data.datasets import check_size, load_csv
    from bot.data.splits import prepare
    from bot.prices.table import PriceTable
    from bot.spec.settings import RunSpec, choices_from_file
    from bot.trainers import billing_for

    pairs = {key: str(getattr(args, option)) for option, key in _OPTIONS.items() if getattr(args, option) is not None}
    if args.template_file is not None:
        pairs["template"] = _read_text(args.template_file, "--template-file")
    prices = PriceTable.load(settings.prices_path)
    spec = RunSpec.defaults(teacher=settings.teacher_model, student=settings.student_model,
                            trainer=settings.trainer).with_assignments(pairs, prices)
    if args.choices_file is not None:
        spec = spec.with_choices(choices_from_file(_read_text(args.choices_file, "--choices-file")))
    path: Path = args.csv
    try:
        check_size(path.stat().st_size, path.name, settings.max_csv_bytes)
        data = path.read_bytes()
    except OSError as exc:
        raise DatasetError(f"Cannot read {path}: {exc.strerror}. Check the path of the CSV.") from exc
    loaded = load_csv(data, filename=path.name, max_bytes=settings.max_csv_bytes, max_rows=settings.max_rows)
    prepared = prepare(spec, loaded.columns, loaded.rows_by_index())
    pilot = asyncio.run(_pilot(args.pilot, spec, prepared, prices, settings)) if args.pilot is not None else None
    quote = estimate(prepared, spec, prices, billing_for(spec.trainer, spec.student, settings),
                     [expectation(pilot[0])] if pilot and pilot[0].answered else [])
    said = _pilot_line(pilot[0], pilot[1], settings.openai_base_url) if pilot else None
    if args.json:
        extra = {"pilot": {**asdict(pilot[0]), "max_micro_usd": pilot[1]}} if pilot else {}
        print(json.dumps({"file": path.name, "warnings": loaded.warnings, **quote.to_dict(), **extra},
                         ensure_ascii=False))
    else:
        print(render_quote(quote, title=path.name, warnings=loaded.warnings, pilot=said))
    return 0


async def _pilot(rows: int, spec: RunSpec, prepared: PreparedRun, prices: PriceTable,
                 settings: Settings) -> tuple[Pilot, int]:
    """The pilot of `rows` train rows against OPENAI_BASE_URL (it spends)."""
    from bot.collect.engine import CollectTask
    from bot.collect.pilot import MAX_PILOT_ROWS, run_pilot
    from bot.collect.requests import requests_for
    from bot.core.errors import SpecError
    from bot.core.provider import ChatProvider
    from bot.spec.budgets import budget_for

    if not 1 <= rows <= MAX_PILOT_ROWS:
        raise SpecError(f"--pilot {rows}: pilot from 1 to {MAX_PILOT_ROWS} train rows (20 is usually enough).")
    settings.require("OPENAI_API_KEY")
    assert settings.openai_api_key is not None
    answer = spec.answer_format(prepared.choices)
    budget = budget_for(spec, prices, "teacher", spec.teacher, answer.longest_tokens(spec.teacher,
                                                                                      spec.max_answer_tokens))
    task = CollectTask(0, "train", "teacher", spec.teacher, requests_for(spec, prepared.train[:rows], spec.teacher),
                       answer, budget)
    provider = ChatProvider(base_url=settings.openai_base_url, api_key=settings.openai_api_key.reveal(),
                            store=settings.store_completions)
    try:
        return await run_pilot(provider, task, prices, requests_per_minute=settings.requests_per_minute,
                               tokens_per_minute=settings.tokens_per_minute, concurrency=settings.concurrency)
    finally:
        await provider.close()


def _pilot_line(pilot: Pilot, most_micro_usd: int, base_url: str) -> str:
    from bot.core.money import format_usd

    effort = f" at effort {pilot.effort}" if pilot.effort else ""
    cut = f"; {pilot.cut_off} cut off at {pilot.max_completion_tokens:,} tokens" if pilot.cut_off else ""
    return (f"pilot: {pilot.model}{effort} answered {pilot.answered} of {pilot.rows} train rows at {base_url}{cut}; "
            f"spent {format_usd(pilot.cost_micro_usd)} (at most {format_usd(most_micro_usd)})")


_HEADINGS = ("stage", "role", "model", "rows", "prompt tok", "completion tok", "trained tok", "USD", "USD batch",
             "at most")


def render_quote(quote: Quote, *, title: str, warnings: Sequence[str] = (), pilot: str | None = None) -> str:
    """The quote as a plain-text table with the rows used and left out above it and notes below: for each line
    the expected cost (live and batch) and the most it can cost in the run's mode."""
    from bot.core.money import format_usd

    most_field = "max_batch_cost_micro_usd" if quote.mode == "batch" else "max_cost_micro_usd"

    rows = quote.rows
    left = rows["left_out"]
    left_text = f"; left out {sum(left.values()):,} ({', '.join(f'{k}: {n:,}' for k, n in left.items())})"
    lines = [
        f"{title}: {rows['total_rows']:,} rows; train {rows['train']:,}, eval {rows['eval']:,}"
        + (f", validation {rows['validation']:,}" if rows["validation"] else "")
        + (left_text if left else "")
        + (f"; {rows['duplicates']:,} duplicates dropped" if rows["duplicates"] else ""),
        *(f"warning: {w}" for w in [*warnings, *rows["notes"]]),
        *([pilot] if pilot else []),
        "",
    ]
    table = [_HEADINGS]
    for stage in quote.stages:
        for line in stage.lines:
            table.append((stage.name, line.role, line.model, f"{line.rows:,}", f"{line.prompt_tokens:,}",
                          f"{line.completion_tokens:,}", f"{line.trained_tokens:,}",
                          format_usd(line.cost_micro_usd), format_usd(line.batch_cost_micro_usd),
                          format_usd(getattr(line, most_field))))
    total = quote.to_dict()["total"]
    table.append(("total", "", "", "", f"{total['prompt_tokens']:,}", f"{total['completion_tokens']:,}",
                  f"{total['trained_tokens']:,}", total["cost_usd"], total["batch_cost_usd"],
                  format_usd(quote.max_amount_micro_usd())))
    widths = [max(len(row[i]) for row in table) for i in range(len(_HEADINGS))]
    for row in table:
        cells = [cell.ljust(w) if i < 3 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths, strict=True))]
        lines.append("  ".join(cells).rstrip())
    lines.append("")
    train = quote.stage("train")
    if train.epochs is None:  # trainer=dicl: the note says what its train stage is
        lines.append("train: nothing is fine-tuned (trainer=dicl)")
    else:
        epochs = f"{train.epochs} epochs of a {train.training_file_tokens:,}-token training file"
        if train.epochs_range:
            low, high = train.epochs_range
            epochs += (f" (epochs=auto: OpenAI picks {low}-{high} by the file's size; "
                       f"at {high} the stage costs {format_usd(train.upper_cost_micro_usd)})")
        lines.append(f"train: {epochs}")
    measured = any(r.get("measured") for r in quote.reasoning)
    unmeasured = any(not r.get("measured") for r in quote.reasoning)
    expected = "expected" + (" (reasoning not measured yet: the answers only)" if unmeasured else
                             " (reasoning from the pilot)" if measured else "")
    mode = " with the Batch API" if quote.mode == "batch" else ""
    lines.append(f"cost{mode}: {expected} {format_usd(quote.amount_micro_usd())}; at most "
                 f"{format_usd(quote.max_amount_micro_usd())} (every answer at its max_completion_tokens, training at "
                 "its most epochs)")
    lines.extend(f"note: {note}" for note in quote.notes)
    for model, price in quote.prices.items():
        lines.append(f"price {model}: as of {price['as_of']}, {price['source']}")
    lines.append(f"quote {quote.quote_hash}")
    return "\n".join(lines)


def _read_text(path: Path, option: str) -> str:
    from bot.core.errors import SpecError

    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"{option} {path}: cannot read it as UTF-8 text ({exc}).") from exc
