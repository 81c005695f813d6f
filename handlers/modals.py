"""A modal for the prompt template: long, multi-line text is easier to write in a form than in a slash command.

views.open must use the trigger id within 3 seconds of the command (https://docs.slack.dev/surfaces/modals),
so it is the first thing the follow-up does. On submit, the template's syntax is checked at once and shown
under the field; the check against the data runs after the ack and is answered in the channel, to the
submitter only.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.core.errors import SpecError
from bot.prompts.templates import Template
from handlers import messages
from handlers.packer import MAX_INPUT, outgoing_view, section
from handlers.surface import Respond, Surface
from storage.runs import Run

CALLBACK_ID = "set_template"
BLOCK_ID = ACTION_ID = "template"


async def open_template_modal(surface: Surface, client: AsyncWebClient, trigger_id: str, run: Run) -> None:
    columns = await surface.service.columns(run)
    element: dict[str, Any] = {"type": "plain_text_input", "action_id": ACTION_ID, "multiline": True,
                               "max_length": MAX_INPUT}
    if run.spec.get("template"):
        element["initial_value"] = run.spec["template"]
    view = {
        "type": "modal", "callback_id": CALLBACK_ID,
        "title": {"type": "plain_text", "text": "Prompt template"},
        "submit": {"type": "plain_text", "text": "Save"}, "close": {"type": "plain_text", "text": "Cancel"},
        "private_metadata": json.dumps({"run": run.id, "channel": run.channel_id}),
        "blocks": [section(messages.template_modal_help(run.name, columns)),
                   {"type": "input", "block_id": BLOCK_ID, "optional": True, "element": element,
                    "label": {"type": "plain_text", "text": "Template"}}],
    }
    await client.views_open(trigger_id=trigger_id, view=outgoing_view(view, surface.secrets))


def ephemeral_poster(client: AsyncWebClient, channel: str, user: str) -> Respond:
    """A respond() for a modal, which has no response_url: an ephemeral message in the run's channel."""

    async def post(*, response_type: str | None = None, replace_original: bool | None = None, **payload: Any) -> None:
        await client.chat_postEphemeral(channel=channel, user=user, **payload)

    return post


def submission_listener(surface: Surface) -> Callable[..., Awaitable[None]]:
    async def on_submit(ack: Any, body: dict[str, Any], view: dict[str, Any], client: AsyncWebClient) -> None:
        target = json.loads(view["private_metadata"])
        template = (view["state"]["values"].get(BLOCK_ID, {}).get(ACTION_ID, {}).get("value") or "").strip()
        try:
            if template:
                Template.parse(template)
        except SpecError as exc:
            await ack(response_action="errors", errors={BLOCK_ID: str(exc)})
            return
        await ack()
        user = body["user"]["id"]

        async def save() -> None:
            run = await surface.run_here(target["channel"], str(target["run"]))
            await surface.service.set_spec(run, {"template": template}, user)

        surface.spawn(save(), surface.reporter(ephemeral_poster(client, target["channel"], user)))

    return on_submit
