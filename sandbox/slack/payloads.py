"""What Slack sends to an app, built in the shapes of the captured samples in ../shared/slack/samples/inbound.

- slash commands: a form body with the fields in the captured order (slash_command.modified-real-payload);
  `is_enterprise_install` travels as the string "false";
- block_actions: JSON in a `payload=` form field, carrying the clicked message with its real blocks, the
  container, response_url and trigger_id (block_actions.button-in-dm.heybot, button-in-message.bolt-python);
- view_submission: JSON in a `payload=` form field with the submitted view and its `state.values`
  (view_submission.plain_text_input.bolt-python);
- Events API: an `event_callback` envelope with `authorizations` around a message event
  (event_callback.message_file_share.png-channel.bolt-python).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from sandbox.slack.workspace import Channel, Workspace

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"


def trigger_id(ws: Workspace, user_id: str) -> str:
    """A trigger the app may exchange once, within 3 seconds, to open a modal for this user."""
    return ws.views.issue_trigger(user_id)


def slash_command_fields(ws: Workspace, *, user: dict[str, Any], channel: Channel, command: str, text: str,
                         response_url: str) -> dict[str, str]:
    return {
        "token": ws.verification_token,
        "team_id": ws.team["id"],
        "team_domain": ws.team["domain"],
        "channel_id": channel.id,
        "channel_name": channel.name,
        "user_id": user["id"],
        "user_name": user["name"],
        "command": command,
        "text": text,
        "api_app_id": ws.app_id,
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": trigger_id(ws, user["id"]),
    }


def form_body(fields: dict[str, str]) -> bytes:
    return urlencode(fields).encode()


def find_button(message: dict[str, Any], action_id: str, value: str | None) -> tuple[str, dict[str, Any]]:
    """(block_id, element) of the button with this action_id (and value, when given) in a message's blocks."""
    candidates = []
    for block in message.get("blocks", []):
        elements = block.get("elements", []) if block.get("type") == "actions" else [block.get("accessory")]
        candidates += [(block["block_id"], e) for e in elements if isinstance(e, dict) and e.get("action_id")]
    for block_id, element in candidates:
        if element["action_id"] == action_id and (value is None or element.get("value") == value):
            return block_id, element
    offered = ", ".join(f"{e['action_id']}={e.get('value')!r}" for _, e in candidates) or "none"
    raise LookupError(f"no button {action_id!r}{f' with value {value!r}' if value else ''} in message "
                      f"{message.get('ts')}; its buttons: {offered}")


def block_actions(ws: Workspace, *, user: dict[str, Any], channel: Channel, message: dict[str, Any],
                  ephemeral: bool, block_id: str, element: dict[str, Any], response_url: str) -> dict[str, Any]:
    container: dict[str, Any] = {"type": "message", "message_ts": message["ts"], "channel_id": channel.id,
                                 "is_ephemeral": ephemeral}
    if message.get("thread_ts"):
        container["thread_ts"] = message["thread_ts"]
    action = {key: element[key] for key in ("action_id", "text", "value", "type", "style") if key in element}
    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": {"id": user["id"], "username": user["name"], "name": user["name"], "team_id": ws.team["id"]},
        "api_app_id": ws.app_id,
        "token": ws.verification_token,
        "container": container,
        "trigger_id": trigger_id(ws, user["id"]),
        "team": {"id": ws.team["id"], "domain": ws.team["domain"]},
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": channel.id, "name": channel.name},
        "state": {"values": {}},
        "response_url": response_url,
        "actions": [dict(action, block_id=block_id, action_ts=ws.ts.next())],
    }
    if not ephemeral:  # Slack omits the message of an ephemeral one (block_actions.button-ephemeral-enterprise)
        payload["message"] = message
    return payload


def view_submission(ws: Workspace, *, user: dict[str, Any], view: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "view_submission",
        "team": {"id": ws.team["id"], "domain": ws.team["domain"]},
        "user": {"id": user["id"], "username": user["name"], "name": user["name"], "team_id": ws.team["id"]},
        "api_app_id": ws.app_id,
        "token": ws.verification_token,
        "trigger_id": trigger_id(ws, user["id"]),
        "view": view,
        "response_urls": [],
        "is_enterprise_install": False,
        "enterprise": None,
    }


def interactive_body(payload: dict[str, Any]) -> bytes:
    return form_body({"payload": json.dumps(payload)})


def message_event(message: dict[str, Any], channel: Channel) -> dict[str, Any]:
    return dict(message, channel=channel.id, event_ts=message["ts"], channel_type=channel.channel_type)


def event_callback(ws: Workspace, event: dict[str, Any]) -> dict[str, Any]:
    event_id = ws.ids.next("Ev")
    return {
        "token": ws.verification_token,
        "team_id": ws.team["id"],
        "api_app_id": ws.app_id,
        "event": event,
        "type": "event_callback",
        "event_id": event_id,
        "event_time": int(ws.clock()),
        "authorizations": [{"enterprise_id": None, "team_id": ws.team["id"], "user_id": ws.bot_user_id,
                            "is_bot": True, "is_enterprise_install": False}],
        "is_ext_shared_channel": False,
        "event_context": f"4-{event_id}",
    }
