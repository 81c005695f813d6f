"""What the run-level features (imports, a separate eval file, re-evaluation, the watch) use of the run service.

They stand beside the run service and are built by it; typing them against this protocol, not the service's class,
keeps the imports one way (the service imports them, they import nothing of it).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol

from bot.collect.context import Collectors
from bot.collect.stage import CollectionStage
from bot.core.clock import Clock
from bot.core.config import Settings
from bot.core.events import Event
from bot.core.tasks import BackgroundTasks
from bot.costs.quotes import Billing
from bot.data.splits import PreparedRun
from bot.prices.table import PriceTable
from bot.runs.notify import Notifier
from bot.runs.worker import DatasetWorker
from bot.spec.settings import RunSpec
from bot.train.stage import TrainingStage
from bot.trainers.base import Trainer
from storage import Storage
from storage.runs import Run


class RunOps(Protocol):
    storage: Storage
    settings: Settings
    prices: PriceTable
    clock: Clock
    tasks: BackgroundTasks
    notifier: Notifier
    datasets: DatasetWorker
    collectors: Collectors
    collection: CollectionStage
    training: TrainingStage
    request_stage: Callable[..., Awaitable[Any]]

    def trainer(self, name: str) -> Trainer: ...

    def billing(self, spec: RunSpec) -> Billing: ...

    def require_idle(self, run: Run, doing: str) -> None: ...

    def run_folder(self, run: Run) -> Path: ...

    async def prepare_run(self, run: Run, spec: RunSpec | None = None) -> tuple[RunSpec, PreparedRun]: ...

    async def refresh_card(self, run: Run) -> None: ...

    async def post_once(self, run: Run, key: str, event: Event) -> str | None: ...
