"""Per-row predictions of a run as CSV: the input, the gold label and each model's answer, one row per eval row,
and for a run with graders each answer's grades (a score, true/false for a pass, win/tie/loss for pairwise).

Made safe to open in a spreadsheet: every cell is quoted (RFC 4180), and a cell that starts with = + - @, a
tab or a carriage return (OWASP, "CSV Injection"), or a line feed or NUL (OWASP ASVS 1.2.10) gets a leading
single quote, so Excel, LibreOffice and Google Sheets show it as text instead of running it as a formula.
"""

from __future__ import annotations

import asyncio
import csv
import io
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bot.data.splits import PreparedRow
from bot.evaluate.scores import BASE, DISTILLED, EVAL_SPLIT, ROLE_NAMES, TEACHER
from storage.completions import Completion

Grades = Mapping[str, Mapping[int, Mapping[str, Any]]]
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n", "\0")
INVALID = "(not a valid answer)"
NO_ANSWER = "(no answer)"


def neutralize(cell: str) -> str:
    """The cell as text a spreadsheet will not evaluate."""
    return "'" + cell if cell.startswith(FORMULA_STARTS) else cell


def predictions_csv(rows: Sequence[PreparedRow], completions: Sequence[Completion], split: str = EVAL_SPLIT,
                    grades: Grades | None = None) -> bytes:
    """UTF-8 CSV with a byte-order mark (so Excel reads the accents right); a column per model that answered, each
    followed by a column per grader of `grades` (role -> row -> grader -> grade)."""
    grades = grades or {}
    answers: dict[str, dict[int, Completion]] = {}
    for completion in completions:
        if completion.split == split:
            answers.setdefault(completion.role, {})[completion.row_index] = completion
    roles = [role for role in (TEACHER, BASE, DISTILLED) if role in answers]
    graders = {role: list(dict.fromkeys(name for by_row in grades.get(role, {}).values() for name in by_row))
               for role in roles}
    header = ["row", "input", "gold"]
    for role in roles:
        model = next(iter(answers[role].values())).model
        header.append(f"{ROLE_NAMES[role]} ({model})")
        header += [f"{ROLE_NAMES[role]}: {name}" for name in graders[role]]
    out = io.StringIO()
    writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        cells = [str(row.row_index), row.user_prompt, row.gold_label or ""]
        for role in roles:
            cells.append(_answer(answers[role].get(row.row_index)))
            found = grades.get(role, {}).get(row.row_index, {})
            cells += [_grade(found.get(name)) for name in graders[role]]
        writer.writerow([neutralize(cell) for cell in cells])
    return out.getvalue().encode("utf-8-sig")


async def write_predictions(run_dir: Path, rows: Sequence[PreparedRow], completions: Sequence[Completion],
                            grades: Grades | None = None) -> Path:
    """Write `predictions.csv` in the run's folder (in a thread) and return its path."""
    path = run_dir / "predictions.csv"

    def write() -> None:
        content = predictions_csv(rows, completions, grades=grades)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        partial.write_bytes(content)
        os.replace(partial, path)

    await asyncio.to_thread(write)
    return path


def _grade(value: Any) -> str:
    return "" if value is None else str(value).lower() if isinstance(value, bool) else str(value)


def _answer(completion: Completion | None) -> str:
    if completion is None or completion.status == "failed":
        return NO_ANSWER
    return completion.parsed_label if completion.status == "ok" and completion.parsed_label else INVALID
