"""Buttons: Approve / Reject on a spending request (value: the approval id), the run card's buttons (value: the
run id; each does what the subcommand of the same name does), and the answers to "cancel this run?", "delete its
data?" and "import these stored completions?".
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.core.events import ApprovalDecided
from bot.data.stored_completions import parse_filter
from bot.runs.cards import ACTIONS
from handlers import messages
from handlers.commands import BY_NAME, Invocation, answer
from handlers.surface import Respond, Surface
from storage.runs import Run

CARD_ACTIONS = sorted({action.action_id for actions in ACTIONS.values() for action in actions})
CARD_ACTION_IDS = re.compile(f"^({'|'.join(CARD_ACTIONS)})$")

Listener = Callable[..., Awaitable[None]]


@dataclass(frozen=True)
class Click:
    action_id: str
    value: str
    channel: str
    user: str


def _clicked(body: dict[str, Any]) -> Click:
    """The button pressed in a block_actions payload, where and by whom."""
    action = body["actions"][0]
    channel = (body.get("channel") or {}).get("id") or body["container"]["channel_id"]
    return Click(action["action_id"], action.get("value", ""), channel, body["user"]["id"])


def decision_listener(surface: Surface) -> Listener:
    """Approve or Reject: the approval rules live in bot.approvals; refusals are told to the clicker alone."""

    async def on_decision(ack: Any, body: dict[str, Any], respond: Respond) -> None:
        await ack()
        click = _clicked(body)
        run: list[Run] = []

        async def decide() -> None:
            approval = await surface.service.approval(int(click.value)) if click.value.isdigit() else None
            run.append(await surface.run_here(click.channel, str(approval.run_id if approval else "")))
            result = await surface.service.decide(int(click.value), click.user, click.action_id)
            if result.approval.status == "expired" and result.approval.message_ts:
                # Expired since the scheduler's last tick: take its buttons away now, not at the next one.
                await surface.notifier.update(run[0], result.approval.message_ts,
                                              ApprovalDecided(result.approval, click.user, "expired", result.message))
            if not result.changed:
                await surface.reply(respond, [messages.refused(result.message)])

        surface.spawn(decide(), surface.reporter(respond, lambda: run[0] if run else None))

    return on_decision


def card_listener(surface: Surface) -> Listener:
    """A card button runs the subcommand of the same name on the card's run."""

    async def on_card(ack: Any, body: dict[str, Any], respond: Respond, client: AsyncWebClient) -> None:
        await ack()
        click = _clicked(body)
        inv = Invocation(surface, click.channel, click.user, body.get("trigger_id", ""), [], client, respond)

        async def run_subcommand() -> None:
            inv.args = [(await surface.run_here(click.channel, click.value)).name]
            await answer(BY_NAME[click.action_id], inv)

        surface.spawn(run_subcommand(), surface.reporter(respond, lambda: inv.resolved))

    return on_card


# What each confirmed question does (handlers/commands.py asks them): `{what}_confirmed` or `{what}_kept`.
CONFIRMED: dict[str, Callable[[Surface, Run, str], Awaitable[None]]] = {
    "cancel": lambda surface, run, user: surface.service.cancel(run, user),
    "delete": lambda surface, run, user: surface.service.delete(run, user),
}
KEPT: dict[str, Callable[[str], str]] = {"cancel": messages.cancel_kept, "delete": messages.delete_kept}
CONFIRMATION_IDS = re.compile(f"^({'|'.join(CONFIRMED)})_(confirmed|kept)$")


def confirmation_listener(surface: Surface) -> Listener:
    """The buttons under "Cancel run X?" or "Delete the data of run X?": do it, or leave it; either way the question
    goes away."""

    async def on_answer(ack: Any, body: dict[str, Any], respond: Respond) -> None:
        await ack()
        click = _clicked(body)
        what, answer = click.action_id.rsplit("_", 1)

        async def settle() -> None:
            run = await surface.run_here(click.channel, click.value)
            if answer == "confirmed":
                await CONFIRMED[what](surface, run, click.user)
                await respond(delete_original=True)
            else:
                await surface.reply(respond, [KEPT[what](run.name)], replace_original=True)

        surface.spawn(settle(), surface.reporter(respond))

    return on_answer


def import_answer_listener(surface: Surface) -> Listener:
    """The buttons under "Import these stored completions?" (value: the run and the filter as typed)."""

    async def on_answer(ack: Any, body: dict[str, Any], respond: Respond) -> None:
        await ack()
        click = _clicked(body)

        async def settle() -> None:
            asked = json.loads(click.value)
            run = await surface.run_here(click.channel, str(asked["run"]))
            if click.action_id == "import_confirmed":
                await respond(delete_original=True)
                await surface.service.imports.import_stored(run, parse_filter(asked["args"]), click.user)
            else:
                await surface.reply(respond, [messages.import_kept(run.name)], replace_original=True)

        surface.spawn(settle(), surface.reporter(respond))

    return on_answer
