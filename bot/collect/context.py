"""What a stage may use, handed to it by the run service: one frozen object instead of the service itself.

The stages (collect, pilot, train) never import the run service or each other. What they need of a run's
surroundings (storage, settings, prices, the clock, the thread, background tasks, the run's folder) and of the
other stages (the trainer of a run, a collector for a model's endpoint, the baseline table) comes through here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from bot.collect.engine import Collector
from bot.core.clock import Clock
from bot.core.config import Settings
from bot.core.events import Event
from bot.core.provider import ChatProvider
from bot.core.tasks import BackgroundTasks
from bot.costs.quotes import Billing
from bot.data.splits import PreparedRun
from bot.prices.table import PriceTable
from bot.spec.settings import RunSpec
from bot.trainers.base import Deployment, Trainer
from storage import Storage
from storage.runs import Run


@dataclass(frozen=True)
class StageContext:
    storage: Storage
    settings: Settings
    prices: PriceTable
    clock: Clock
    tasks: BackgroundTasks
    post: Callable[[Run, Event], Awaitable[str | None]]  # a message in the run's thread
    upload: Callable[[Run, Path, str], Awaitable[None]]  # a file in the run's thread, with its title
    prepare_run: Callable[[Run], Awaitable[tuple[RunSpec, PreparedRun]]]
    refresh_card: Callable[[Run], Awaitable[None]]
    post_once: Callable[[Run, str, Event], Awaitable[str | None]]
    run_folder: Callable[[Run], Path]
    billing: Callable[[RunSpec], Billing]
    trainer_for: Callable[[str], Trainer]
    collector_for: Callable[[Deployment | None], Collector]


class Collectors:
    """One collector per base URL, sharing the default collector's rate limiters; closed with the service."""

    def __init__(self, default: Collector, storage: Storage, prices: PriceTable) -> None:
        self.default = default
        self.storage = storage
        self.prices = prices
        self._by_url: dict[str, Collector] = {}

    def collector_for(self, endpoint: Deployment | None) -> Collector:
        """The collector for a model served at `endpoint` (None: OPENAI_BASE_URL)."""
        if endpoint is None or endpoint.base_url.rstrip("/") == self.default.provider.base_url.rstrip("/"):
            return self.default
        if endpoint.base_url not in self._by_url:
            provider = ChatProvider(base_url=endpoint.base_url, api_key=endpoint.api_key.reveal(), store=False)
            self._by_url[endpoint.base_url] = Collector(self.storage, provider, self.prices, self.default.limiters,
                                                        concurrency=self.default.concurrency)
        return self._by_url[endpoint.base_url]

    async def close(self) -> None:
        for collector in self._by_url.values():
            await collector.provider.close()
