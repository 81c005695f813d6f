"""Teacher answers that came with a run's data (a JSONL of chat examples, or stored completions imported): they are
stored as the run's teacher answers, free, instead of being asked for."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from bot.data.imports import KIND, imported_answers
from bot.data.splits import EVAL_FILE_ROW_OFFSET, PreparedRow, PreparedRun
from storage import Storage
from storage.runs import Run


async def answers_imported(storage: Storage, run: Run) -> bool:
    """Whether the run's data carries the teacher's answers (a JSONL file or an import)."""
    dataset = await storage.datasets.get(run.dataset_id) if run.dataset_id else None
    return dataset is not None and dataset.kind == KIND


async def store_answers(storage: Storage, run: Run, groups: Sequence[tuple[str, Sequence[PreparedRow]]],
                        choices: Sequence[str], eval_dataset_id: int | None) -> None:
    """Stored answers as teacher answers on each (split, rows) group: rows of the run's data, and those of
    the chat eval file `eval_dataset_id` (whose row_index is offset, bot/data/splits.py)."""
    done = {split: {index: digest for index, (digest, _) in
                    (await storage.completions.answered_requests(run.id, split, "teacher")).items()}
            for split, _ in groups}
    rows = await storage.datasets.rows(run.dataset_id)
    if eval_dataset_id is not None:
        held = await storage.datasets.rows(eval_dataset_id)
        rows.update({EVAL_FILE_ROW_OFFSET + index: row for index, row in held.items()})
    answers = await asyncio.to_thread(imported_answers, run.id, groups, choices, rows, done)
    await storage.completions.save_many(answers)


async def store_teacher_answers(storage: Storage, run: Run, prepared: PreparedRun) -> dict[str, dict[str, int]]:
    """The stored answers as the run's teacher answers on every split (free); the counts by split."""
    groups = [("train", prepared.train), ("validation", prepared.validation), ("eval", prepared.eval)]
    await store_answers(storage, run, groups, prepared.choices, run.eval_dataset_id)
    counts: dict[str, dict[str, int]] = {}
    for (split, role, status), n in (await storage.completions.counts(run.id)).items():
        if role == "teacher" and split in ("train", "validation", "eval"):
            counts.setdefault(f"teacher/{split} (imported)", {"ok": 0, "invalid": 0})[status] = n
    return counts
