"""A run's data from answers the team already has: a shared JSONL file, or `/distill import` of stored completions.

Either way the examples become a chat dataset (bot/data/imports.py) attached to the run like a CSV, with the settings
that follow from it; nothing stored so far is lost, and a file or an import that cannot be used leaves the run as
it was. An import first shows what matches (counts by metadata value and model, and when the provider deletes
them) and stores nothing until it is confirmed. When the run collects, `store_teacher_answers` makes the stored
answers the run's teacher answers, free.
"""
from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from bot.core.errors import DatasetError, SpecError, StateError
from bot.core.events import DatasetRefused, Note, TableReady
from bot.data.chat_examples import ChatExamples, Unusable, line_list, parse_jsonl
from bot.data.imports import ChatData, chat_data, spec_for_chat, store_chat_data, summary_lines
from bot.data.stored_completions import (
    StoredFilter,
    counts_by_metadata,
    examples_of,
    list_stored,
    retention_warning,
)
from bot.runs.ops import RunOps
from bot.spec.settings import RunSpec
from storage.runs import Run
from storage.states import RunState

NAMED_REASONS = 20  # unusable lines shown with their reason (every line number is listed)
SHOWN_VALUES = 10  # metadata values shown per key in a preview


@dataclass(frozen=True)
class ImportPreview:
    """What an import would take: how many completions match, before anything is stored."""

    wanted: StoredFilter
    matching: int


def unusable_lines(unusable: Sequence[Unusable], total: int) -> str:
    """The examples not used, every one named (line numbers compactly), the first NAMED_REASONS with why."""
    lines = [u for u in unusable if u.where.startswith("line ")]
    others = [u for u in unusable if not u.where.startswith("line ")]
    named = [f"{u.where}: {u.reason}" for u in unusable[:NAMED_REASONS]]
    more = len(unusable) - len(named)
    where = ", ".join(filter(None, [line_list(lines) if lines else "", ", ".join(u.where for u in others)]))
    return (f"{len(unusable):,} of {total:,} examples were not used ({where}). " + "; ".join(named)
            + (f"; and {more:,} more." if more else "."))


class ImportStage:
    def __init__(self, service: RunOps) -> None:
        self.service = service

    # ----- a JSONL file ------------------------------------------------------------------------------------

    async def attach_jsonl(self, run: Run, *, data: bytes, filename: str, user: str) -> None:
        """Parse a shared JSONL file of chat examples and make it the run's data; problems go to the thread."""
        self.service.require_idle(run, "upload new data")
        settings = self.service.settings
        try:
            parsed = await asyncio.to_thread(parse_jsonl, data, filename, max_bytes=settings.max_csv_bytes,
                                             max_rows=settings.max_rows)
        except DatasetError as exc:
            await self.service.notifier.post(run, DatasetRefused(filename, str(exc)))
            return
        await self._attach(run, parsed, filename, len(data), user, source=filename)

    # ----- stored completions ------------------------------------------------------------------------------

    async def preview(self, run: Run, wanted: StoredFilter) -> ImportPreview:
        """Post what matches the filter (counts by metadata value and model, the retention date); store nothing."""
        self.service.require_idle(run, "import data")
        completions = await list_stored(self.service.collectors.default.provider.client, wanted)
        if not completions:
            raise StateError(f"No stored chat completions match {wanted.describe()} at "
                             f"{self.service.collectors.default.provider.base_url}. Only completions made with "
                             "store=true in the last 30 days are listed; check the model name and the metadata pairs.")
        rows = [(key, value, f"{n:,}") for key, counter in counts_by_metadata(completions).items()
                for value, n in counter.most_common(SHOWN_VALUES)]
        table = _table(("filter key", "value", "completions"), rows)
        await self.service.notifier.post(run, TableReady(
            f"Stored completions matching {wanted.describe()}: {len(completions):,}", table,
            "Counts by metadata value and model, before anything is stored. Nothing is imported until the "
            "import is confirmed; duplicates (the same input, normalized) are dropped then."))
        await self.service.notifier.post(run, Note(retention_warning(completions, self.service.clock.today()),
                                                   "warning"))
        return ImportPreview(wanted, len(completions))

    async def import_stored(self, run: Run, wanted: StoredFilter, user: str) -> None:
        """List the matching completions again, read their messages and make them the run's data."""
        self.service.require_idle(run, "import data")
        client = self.service.collectors.default.provider.client
        completions = await list_stored(client, wanted)
        if not completions:
            raise StateError(f"No stored chat completions match {wanted.describe()} any more.")
        examples = await examples_of(client, completions)
        if not examples.examples:
            raise DatasetError(unusable_lines(examples.unusable, len(completions)))
        await self._attach(run, examples, f"stored completions ({wanted.describe()})", 0, user,
                           source=wanted.describe())

    # ----- both ---------------------------------------------------------------------------------------------

    async def _attach(self, run: Run, parsed: ChatExamples, filename: str, size_bytes: int, user: str, *,
                      source: str) -> None:
        service = self.service
        data: ChatData = await asyncio.to_thread(chat_data, parsed.examples, parsed.unusable)
        dataset, seen_before = await store_chat_data(service.storage, data, filename, size_bytes)
        try:
            spec = spec_for_chat(RunSpec.from_dict(run.spec), dataset, service.prices)
        except (DatasetError, SpecError) as exc:
            await service.notifier.post(run, DatasetRefused(filename, str(exc)))
            return
        voided = await service.storage.approvals.void_pending(run.id)
        run = await service.storage.runs.update(run.id, dataset_id=dataset.id, spec=spec.to_dict(),
                                                state=RunState.READY, error=None)
        await service.storage.audit.add(run_id=run.id, actor=user, action="answers-imported", detail={
            "dataset": dataset.id, "filename": filename, "source": source, "examples": len(data.rows),
            "unusable": len(data.unusable), "duplicates": data.duplicates, "voided_approvals": len(voided)})
        again = " They were brought before; the stored copy is reused." if seen_before else ""
        await service.notifier.post(run, Note(f"Loaded {filename}.{again}\n" + "\n".join(
            summary_lines(data, dataset, spec, run.name))))
        if data.unusable:
            await service.notifier.post(run, Note(unusable_lines(data.unusable, len(data.rows) + data.duplicates
                                                                 + len(data.unusable)), "warning"))
        await service.refresh_card(run)

def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in [header, *rows]]
    return "\n".join([lines[0], "  ".join("-" * w for w in widths), *lines[1:]])
