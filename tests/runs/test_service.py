"""The run lifecycle in bot/, with the sandbox OpenAI server and a notifier that records what it is told.

The Slack rendering of the same flow is tested in tests/handlers; here the point is the state machine,
what is stored, and what is announced.
"""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest

from bot.collect.engine import Collector
from bot.collect.ratelimit import RateLimiters
from bot.core.config import Settings
from bot.core.errors import SpecError, StateError
from bot.core.events import (
    ApprovalDecided,
    ApprovalRequested,
    CollectionFinished,
    DatasetLoaded,
    DatasetRefused,
    QuoteReady,
    SpecUpdated,
)
from bot.core.provider import ChatProvider
from bot.examples import TICKETS_CSV
from bot.prices.table import PriceTable
from bot.runs.cards import Card
from bot.runs.service import RunService
from tests.collect.helpers import paid_per_prompt
from tests.conftest import OPENAI_TRAINER_ENV


class RecordingNotifier:
    def __init__(self):
        self.cards: list[Card] = []
        self.posts: list[object] = []
        self.updates: list[tuple[str, object]] = []
        self._ts = 0

    def _next_ts(self) -> str:
        self._ts += 1
        return f"1700000000.{self._ts:06d}"

    async def show_card(self, run, card):
        self.cards.append(card)
        return run.card_ts or self._next_ts()

    async def post(self, run, event):
        self.posts.append(event)
        return self._next_ts()

    async def update(self, run, ts, event):
        self.updates.append((ts, event))

    async def upload(self, run, path, title):
        self.posts.append(("upload", path, title))

    def of(self, kind):
        return [p for p in self.posts if isinstance(p, kind)]


class NoGroups:
    async def members_of(self, group_id):
        return set()


@pytest.fixture
async def service_for(storage, openai_sandbox, tmp_path, clock):
    made = []

    def make(**env):
        settings = Settings.from_env({"DISTILL_APPROVERS": "U0ALICE,U0BOB,U0CAROL", "OPENAI_API_KEY": "sk-sandbox",
                                     "OPENAI_BASE_URL": openai_sandbox.url,
                                     "DISTILL_DATA_DIR": str(tmp_path / "data"), **OPENAI_TRAINER_ENV, **env})
        provider = ChatProvider(base_url=openai_sandbox.url, api_key="sk-sandbox")
        collector = Collector(storage, provider, PriceTable.load(),
                              RateLimiters(requests_per_minute=10_000, tokens_per_minute=10_000_000))
        notifier = RecordingNotifier()
        service = RunService(storage=storage, settings=settings, prices=PriceTable.load(), notifier=notifier,
                             directory=NoGroups(), collector=collector, clock=clock)
        made.append((service, provider))
        return service, notifier

    yield make
    for service, provider in made:
        await service.close()
        await provider.close()


async def _ready_run(service, name="tickets"):
    run = await service.create(channel_id="C1", name=name, requester="U0ALICE")
    await service.attach_csv(run, data=TICKETS_CSV.read_bytes(), filename="it-tickets.csv", user="U0ALICE")
    run = await service.find("C1", name)
    await service.set_spec(run, {"label": "category", "train": "60", "eval": "30"}, "U0ALICE")
    return await service.find("C1", name)


async def test_a_new_run_posts_its_card_and_names_must_be_unique_and_well_formed(service_for):
    service, notifier = service_for()
    run = await service.create(channel_id="C1", name="tickets", requester="U0ALICE")
    assert run.thread_ts and run.card_ts == run.thread_ts and notifier.cards[-1].state == "created"
    with pytest.raises(StateError, match="already exists"):
        await service.create(channel_id="C1", name="tickets", requester="U0ALICE")
    with pytest.raises(SpecError, match="cannot be a run name"):
        await service.create(channel_id="C1", name="Bad Name!", requester="U0ALICE")
    await service.create(channel_id="C2", name="tickets", requester="U0ALICE")  # another channel: fine
    with pytest.raises(StateError, match=r"No run named 'missing'.*tickets"):
        await service.find("C1", "missing")


async def test_a_csv_is_profiled_and_a_broken_one_is_refused_without_losing_the_first(service_for, storage):
    service, notifier = service_for()
    run = await service.create(channel_id="C1", name="tickets", requester="U0ALICE")
    await service.attach_csv(run, data=TICKETS_CSV.read_bytes(), filename="it-tickets.csv", user="U0ALICE")
    [loaded] = notifier.of(DatasetLoaded)
    assert loaded.rows == 480 and "category" in loaded.columns
    await service.attach_csv(await service.find("C1", "tickets"), data=b"\x00\x01\x02binary", filename="x.csv",
                             user="U0ALICE")
    [refused] = notifier.of(DatasetRefused)
    assert refused.filename == "x.csv" and refused.message
    run = await service.find("C1", "tickets")
    assert run.state == "ready" and run.dataset_id == loaded.dataset_id


async def test_settings_are_checked_against_the_data(service_for):
    service, notifier = service_for()
    run = await _ready_run(service)
    with pytest.raises(SpecError, match="category"):
        await service.set_spec(run, {"label": "categroy"}, "U0ALICE")
    assert notifier.of(SpecUpdated)[-1].changes == {"label": "category", "train": "60", "eval": "30"}


async def test_collect_needs_an_approver_then_answers_every_split_and_reports(service_for, storage):
    service, notifier = service_for()
    run = await _ready_run(service)
    quote = await service.estimate(run)
    assert notifier.of(QuoteReady) and quote.amount_micro_usd("collect") > 0
    approval = await service.request_stage(run, "collect", "U0ALICE")
    assert approval.status == "pending" and approval.message_ts
    assert (await service.find("C1", "tickets")).state == "awaiting_approval"
    [asked] = notifier.of(ApprovalRequested)
    assert asked.quote["max_micro_usd"] >= asked.quote["estimate_micro_usd"] > 0

    refused = await service.decide(approval.id, "U0ALICE", "approve")
    assert refused.outcome == "refused" and "someone else" in refused.message
    refused = await service.decide(approval.id, "U0MALLORY", "approve")
    assert refused.outcome == "refused" and "approvers" in refused.message

    result = await service.decide(approval.id, "U0BOB", "approve")
    assert result.outcome == "approved"
    assert isinstance(notifier.updates[-1][1], ApprovalDecided) and notifier.updates[-1][0] == approval.message_ts
    await service.tasks.wait_idle()
    run = await service.find("C1", "tickets")
    assert run.state == "collected"
    [finished] = notifier.of(CollectionFinished)
    assert finished.stopped == "done" and finished.spend_micro_usd <= approval.amount_micro_usd
    assert finished.counts["teacher/train"]["ok"] == 60 and finished.counts["student_base/eval"]["ok"] == 30
    assert len(await storage.runs.rows(run.id, "eval")) == 30
    assert {"approval-requested", "approval-refused", "approve", "approved", "collection-finished"} <= {
        e.action for e in await storage.audit.for_run(run.id)}


async def test_a_quote_under_the_threshold_is_auto_approved_and_starts(service_for):
    service, _ = service_for(DISTILL_AUTO_APPROVE_USD="5")
    run = await _ready_run(service)
    approval = await service.request_stage(run, "collect", "U0ALICE")
    assert approval.status == "approved" and approval.auto_approved
    await service.tasks.wait_idle()
    assert (await service.find("C1", "tickets")).state == "collected"


async def test_a_spec_change_voids_the_pending_request(service_for, storage):
    service, _ = service_for()
    run = await _ready_run(service)
    approval = await service.request_stage(run, "collect", "U0ALICE")
    await service.set_spec(await service.find("C1", "tickets"), {"eval": "20"}, "U0ALICE")
    assert (await storage.approvals.require(approval.id)).status == "voided"
    assert (await service.find("C1", "tickets")).state == "ready"
    result = await service.decide(approval.id, "U0BOB", "approve")
    assert result.outcome == "refused" and "voided" in result.message


async def test_a_restarted_bot_resumes_a_collection_and_pays_only_in_flight_requests_again(
        service_for, storage, openai_sandbox):
    openai_sandbox.latency_seconds = 0.05
    service, _ = service_for(DISTILL_AUTO_APPROVE_USD="5")
    run = await _ready_run(service)
    await service.request_stage(run, "collect", "U0ALICE")
    for _ in range(500):
        if (await storage.db.fetchone("SELECT COUNT(*) FROM completions"))[0] >= 40:
            break
        await asyncio.sleep(0.02)
    else:
        raise AssertionError("the collection never stored 40 answers")
    await service.tasks.shutdown()  # the process dies: in-flight requests are lost, the state stays collecting
    assert (await service.find("C1", "tickets")).state == "collecting"

    restarted, notifier = service_for(DISTILL_AUTO_APPROVE_USD="5")
    await restarted.resume()
    await restarted.tasks.wait_idle()
    assert (await restarted.find("C1", "tickets")).state == "collected"
    assert (await storage.db.fetchone("SELECT COUNT(*) FROM completions WHERE status = 'ok'"))[0] == 120
    paid = paid_per_prompt(openai_sandbox)
    in_flight = 4 * 16  # four collection tasks, each with up to 16 requests in flight
    assert sum(paid.values()) - len(paid) <= in_flight
    [finished] = notifier.of(CollectionFinished)
    assert finished.stopped == "done"


async def test_models_lists_what_a_run_can_pick_and_what_runs_here_use_with_dates(service_for, openai_sandbox):
    service, _ = service_for()
    run = await service.create(channel_id="C1", name="tickets", requester="U0ALICE")
    await service.set_spec(run, {"teacher": "gpt-4o"}, "U0ALICE")
    found, notes = await service.models("C1")
    models = {m.model: m for m in found}
    sol = models["gpt-6.2-sol"]
    # trainer=dicl takes any chat model as its student: it is prompted, not trained
    assert (sol.picks, sol.listed, sol.shutdown_date, sol.training_usd_per_1m) == (
        ("teacher", "student (dicl)"), True, None, None)
    assert sol.efforts == ("low", "medium", "high", "xhigh", "max") and sol.uses == ("default teacher",)
    assert models["gpt-4o"].shutdown_date == dt.date(2027, 1, 14) and models["gpt-4o"].listed
    assert "run tickets: teacher" in models["gpt-4o"].uses
    mini = models["gpt-4o-mini-2024-07-18"]
    assert "student (openai)" in mini.picks and "default student" in mini.uses and not mini.shut_down
    nano = models["gpt-4.1-nano-2025-04-14"]
    assert nano.shut_down and nano.shutdown_date == dt.date(2026, 10, 23) and "student (openai)" in nano.picks
    assert "text-embedding-3-small" not in models
    assert any("TOGETHER_API_KEY" in note for note in notes)  # trainer=together is not configured here
    # The provider's date wins over the price table's.
    openai_sandbox.catalog.set_shutdown_date("gpt-6.2-sol", "2027-09-01")
    models = {m.model: m for m in (await service.models("C1"))[0]}
    assert models["gpt-6.2-sol"].shutdown_date == dt.date(2027, 9, 1)
