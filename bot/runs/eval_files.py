"""A separate test set: a file shared in a run's thread with the comment `eval`.

Before a run is trained the file becomes its eval split instead of rows carved from the data (bot/data/splits.py,
`EvalFile`): the rows of the data with the same input leave train, so the split stays disjoint. After the run is
done it is a new eval for the distilled model (`/distill eval NAME`, bot/runs/reevaluation.py) and the first report
stays as it was. `/distill set NAME eval_file=FILENAME` picks an eval file shared before again, `eval_file=none`
goes back to a carved split.

The file is a CSV with the columns the run's template (and label) use, or, for a run whose data is chat examples,
a JSONL of them, whose answers are the teacher's.
"""
from __future__ import annotations

import asyncio

from bot.collect.imported import answers_imported
from bot.core.errors import USER_ERRORS, DatasetError, StateError
from bot.core.events import DatasetRefused, Note
from bot.data.chat_examples import parse_jsonl
from bot.data.imports import KIND, chat_data, store_chat_data
from bot.runs.ops import RunOps
from bot.runs.worker import check_dataset, ingest_csv
from bot.spec.settings import RunSpec
from storage.datasets import Dataset
from storage.runs import Run
from storage.states import RunState

ATTACHED = "eval-file-attached"
NONE = "none"
JSONL = (".jsonl", ".ndjson")
FINISHED = ("done",)


class EvalFiles:
    def __init__(self, service: RunOps) -> None:
        self.service = service

    async def attach(self, run: Run, *, data: bytes, filename: str, user: str) -> None:
        """Store a shared eval file: the run's eval split, or, once the run is done, a new eval to run."""
        service = self.service
        service.require_idle(run, "change the eval split")
        try:
            dataset = await self._store(run, data, filename)
        except DatasetError as exc:
            await service.notifier.post(run, DatasetRefused(filename, str(exc)))
            return
        await service.storage.audit.add(run_id=run.id, actor=user, action=ATTACHED,
                                        detail={"dataset": dataset.id, "filename": filename})
        if run.state in FINISHED:
            reeval = await service.storage.reevals.add(run_id=run.id, dataset_id=dataset.id, filename=filename,
                                                       shared_by=user)
            await service.notifier.post(run, Note(
                f"Stored {filename} ({dataset.row_count:,} rows) as a new eval for the distilled model. "
                f"`/distill eval {run.name}` asks to run it (teacher, base and distilled students on its rows); the "
                f"first report stays as it is. (eval #{reeval.id})"))
            return
        await self.use(run, dataset, user)

    async def use(self, run: Run, dataset: Dataset | None, user: str) -> None:
        """Make `dataset` the run's eval split (None: carve it from the data again), checked against the data."""
        service = self.service
        if run.dataset_id and dataset is not None:
            data = await service.storage.datasets.require(run.dataset_id)
            try:
                await service.datasets.run(data.size_bytes + dataset.size_bytes, check_dataset, data.id,
                                           RunSpec.from_dict(run.spec), dataset.id)
            except USER_ERRORS as exc:
                await service.notifier.post(run, DatasetRefused(dataset.filename, str(exc)))
                return
        voided = await service.storage.approvals.void_pending(run.id)
        state = (run.state_before or RunState.READY) if run.state == RunState.AWAITING_APPROVAL else run.state
        back = state in (RunState.COLLECTED, RunState.FAILED, RunState.CANCELLED) and run.dataset_id is not None
        run = await service.storage.runs.update(run.id, eval_dataset_id=dataset.id if dataset else None,
                                                state="ready" if back else state)
        await service.storage.audit.add(run_id=run.id, actor=user, action="eval-file-chosen",
                                        detail={"dataset": dataset.id if dataset else None,
                                                "voided_approvals": len(voided)})
        if dataset is None:
            text = "The eval split is carved from the data again (eval=N rows)."
        else:
            text = (f"The eval split is now the rows of {dataset.filename} ({dataset.row_count:,} rows), not carved "
                    "from the data; rows of the data with the same input stay out of train.")
        if voided:
            text += f" {len(voided)} pending approval(s) voided: ask again for a new quote."
        if run.dataset_id and back:
            text += f" Collect again (`/distill collect {run.name}`): answers already paid for are reused."
        await service.notifier.post(run, Note(text))
        await service.refresh_card(run)

    async def select(self, run: Run, value: str, user: str) -> None:
        """`/distill set NAME eval_file=FILENAME|none`."""
        self.service.require_idle(run, "change the eval split")
        if run.state in FINISHED:
            raise StateError(f"Run '{run.name}' is done: its report stays as it is. Share a new eval file with the "
                             f"comment `eval`, then `/distill eval {run.name}` evaluates the distilled model on it.")
        if value.strip().lower() == NONE:
            await self.use(run, None, user)
            return
        shared = [e.detail for e in await self.service.storage.audit.for_run(run.id) if e.action == ATTACHED]
        found = next((d for d in reversed(shared) if d.get("filename") == value), None)
        if found is None:
            names = sorted({d["filename"] for d in shared})
            listed = f" Eval files shared here: {', '.join(names)}." if names else ""
            raise StateError(f"No eval file named '{value}' was shared in this run's thread.{listed} Share it with "
                             "the comment `eval`, or set eval_file=none to carve the eval split from the data.")
        await self.use(run, await self.service.storage.datasets.require(found["dataset"]), user)

    async def _store(self, run: Run, data: bytes, filename: str) -> Dataset:
        """The file as a dataset of the run's kind (CSV, or chat examples for a run whose data is chat examples)."""
        service = self.service
        settings = service.settings
        chat = await answers_imported(service.storage, run)
        if chat != filename.lower().endswith(JSONL):
            raise DatasetError("this run's data is chat examples, so its eval file is a .jsonl of them (their replies "
                               "are the teacher's answers)." if chat else
                               "this run's data is a CSV, so its eval file is a CSV with the same columns.")
        if chat:
            parsed = await asyncio.to_thread(parse_jsonl, data, filename, max_bytes=settings.max_csv_bytes,
                                             max_rows=settings.max_rows)
            examples = await asyncio.to_thread(chat_data, parsed.examples, parsed.unusable)
            dataset, _ = await store_chat_data(service.storage, examples, filename, len(data))
            if dataset.kind != KIND:
                raise DatasetError("this file was shared before as a CSV.")
            return dataset
        ingested = await service.datasets.run(len(data), ingest_csv, data, filename, settings.max_csv_bytes,
                                              settings.max_rows)
        return await service.storage.datasets.require(ingested.dataset_id)
