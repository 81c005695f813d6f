"""The Bolt app, wired in one place: middleware first, then one listener per kind of request."""

from __future__ import annotations

import logging
import re

from slack_bolt.async_app import AsyncApp
from slack_bolt.logger.messages import warning_client_prioritized_and_token_skipped
from slack_sdk.web.async_client import AsyncWebClient

from handlers import actions, commands, messages, middleware, modals
from handlers.files import SlackFiles, file_share_listener
from handlers.surface import Surface


class _BoltTokenNotice(logging.Filter):
    """AsyncApp reads SLACK_BOT_TOKEN from the environment even when it is given a client (ours: retries, base URL)
    and then warns at every start that the token is unused. The client carries that same token."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != warning_client_prioritized_and_token_skipped()


_BOLT_TOKEN_NOTICE = _BoltTokenNotice()


async def _other_messages() -> None:
    """Messages that are not file shares in a run's thread need no answer (Slack already got its ack)."""


def build_app(surface: Surface, files: SlackFiles, *, client: AsyncWebClient, signing_secret: str | None) -> AsyncApp:
    logging.getLogger(f"slack_bolt.{AsyncApp.__name__}").addFilter(_BOLT_TOKEN_NOTICE)  # its logger; added once
    app = AsyncApp(
        client=client,
        signing_secret=signing_secret or "",
        # Listeners only parse, ack and hand the work to surface.followups, so answering Slack after they return
        # costs nothing, and the work is tracked by the time Slack has its answer.
        process_before_response=True,
        # handlers/middleware.ignore_bot_messages skips every bot's messages, this bot's included.
        ignoring_self_events_enabled=False,
    )
    app.use(middleware.log_requests)
    app.use(middleware.ignore_bot_messages)
    app.use(middleware.dedupe_events(surface.service.first_delivery))

    app.command(messages.COMMAND)(commands.listener(surface))
    app.action(re.compile("^(approve|reject)$"))(actions.decision_listener(surface))
    app.action(actions.CARD_ACTION_IDS)(actions.card_listener(surface))
    app.action(actions.CONFIRMATION_IDS)(actions.confirmation_listener(surface))
    app.action(re.compile("^import_(confirmed|kept)$"))(actions.import_answer_listener(surface))
    app.view(modals.CALLBACK_ID)(modals.submission_listener(surface))
    app.event({"type": "message", "subtype": "file_share"})(file_share_listener(surface, files))
    app.event("message")(_other_messages)
    return app
