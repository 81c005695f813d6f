"""What every listener needs, in one object: the product, the notifier, follow-up work and replies to one person."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from slack_sdk.errors import SlackApiError

from bot.core.config import Settings
from bot.core.errors import DistillError, StateError
from bot.core.events import Note
from bot.runs.service import RunService
from handlers import messages
from handlers.followups import Followups, Report
from handlers.notifier import SlackNotifier
from handlers.packer import Message, ephemeral, outgoing
from handlers.render import Renderer
from storage.runs import Run

Respond = Callable[..., Awaitable[Any]]  # Bolt's respond(): posts to the response_url Slack gave


class SlackSetupError(DistillError):
    """Slack refused a call for a reason the workspace can fix (bot not in the channel, a missing scope)."""


async def slack_call(work: Awaitable[Any]) -> Any:
    """Await a piece of work, turning Slack errors a user can fix into a SlackSetupError saying how."""
    try:
        return await work
    except SlackApiError as exc:
        text = messages.slack_refused(str(exc.response.get("error")), exc.response.get("needed"))
        if text is None:
            raise
        raise SlackSetupError(text) from exc


@dataclass(frozen=True)
class Surface:
    service: RunService
    settings: Settings
    notifier: SlackNotifier
    renderer: Renderer
    followups: Followups
    secrets: tuple[str, ...]

    def spawn(self, work: Awaitable[Any], report: Report) -> None:
        """Run a listener's work after its ack, with Slack errors a user can fix told as such."""
        self.followups.spawn(slack_call(work), report)

    def outgoing(self, message: Message) -> dict[str, Any]:
        return outgoing(message, self.secrets)

    async def reply(self, respond: Respond, lines: Sequence[str], **options: Any) -> None:
        """An ephemeral answer to the person who typed or clicked."""
        for message in ephemeral(lines):
            await respond(**self.outgoing(message), response_type="ephemeral",
                          **{"replace_original": False, **options})

    def reporter(self, respond: Respond, run: Callable[[], Run | None] = lambda: None) -> Report:
        """How a failed follow-up is told: to the person who asked and, for a bug, in the run's thread too."""

        async def report(message: str, error_id: str | None) -> None:
            await self.reply(respond, [messages.refused(message) if error_id is None else messages.failed(message)])
            target = run()
            if error_id and target is not None:
                await self.notifier.post(target, Note(message, "warning"))

        return report

    async def run_here(self, channel_id: str, run_id: str) -> Run:
        """The run a button names, if it belongs to this channel (runs of other channels are invisible)."""
        run = await self.service.run(int(run_id)) if run_id.isdigit() else None
        if run is None or run.channel_id != channel_id:
            raise StateError("That run is not in this channel. `/distill list` shows the runs here.")
        return run
