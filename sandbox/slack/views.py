"""Modals: trigger ids, views.open / views.update, and what a user's submission does to an open view.

Slack's rules (https://docs.slack.dev/reference/methods/views.open, /views.update, /surfaces/modals): a trigger
id comes with a slash command or a click, is valid for 3 seconds and can be exchanged once (invalid_trigger_id,
expired_trigger_id, exchanged_trigger_id); a modal's title has at most 24 characters, it holds at most 100
blocks (each within a message block's limits, such as 3000 characters of section text), private_metadata at most
3000 characters, and a view with input blocks needs a submit button; an
update with a stale `hash` is refused with hash_conflict. After a view_submission the app's ack decides:
an empty body closes the modal, `response_action: errors` keeps it open with the errors shown,
`update` replaces it, `clear` closes it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sandbox.slack.calls import ApiError
from sandbox.slack.ids import Sequence, opaque
from sandbox.slack.limits import block_problems

TRIGGER_SECONDS = 3
MAX_TITLE = 24
MAX_MODAL_BLOCKS = 100
MAX_PRIVATE_METADATA = 3000
MAX_INPUT_LENGTH = 3000  # plain_text_input max_length


@dataclass
class Trigger:
    user: str
    issued_at: float
    used: bool = False


def _problems(view: Any) -> list[str]:
    """Why Slack would answer invalid_arguments for this view; empty when it is acceptable."""
    if not isinstance(view, dict) or view.get("type") != "modal":
        return ["[ERROR] must be a modal view object [json-pointer:/view/type]"]
    problems = []
    title = view.get("title")
    if not isinstance(title, dict) or title.get("type") != "plain_text" or not title.get("text"):
        problems.append("[ERROR] must provide a plain_text title [json-pointer:/view/title]")
    elif len(title["text"]) > MAX_TITLE:
        problems.append(f"[ERROR] must be less than {MAX_TITLE + 1} characters [json-pointer:/view/title/text]")
    blocks = view.get("blocks")
    if not isinstance(blocks, list) or len(blocks) > MAX_MODAL_BLOCKS:
        problems.append(f"[ERROR] must be an array of at most {MAX_MODAL_BLOCKS} blocks [json-pointer:/view/blocks]")
        return problems
    problems += block_problems(blocks, most=MAX_MODAL_BLOCKS, pointer="/view/blocks")
    if len(str(view.get("private_metadata", ""))) > MAX_PRIVATE_METADATA:
        problems.append(f"[ERROR] must be less than {MAX_PRIVATE_METADATA + 1} characters "
                        "[json-pointer:/view/private_metadata]")
    inputs = [(i, b) for i, b in enumerate(blocks) if isinstance(b, dict) and b.get("type") == "input"]
    if inputs and not view.get("submit"):
        problems.append("[ERROR] a view with input blocks must have a submit button [json-pointer:/view/submit]")
    for i, block in inputs:
        element = block.get("element") or {}
        if not isinstance(block.get("label"), dict) or not element.get("action_id"):
            problems.append(f"[ERROR] an input needs a label and an element with an action_id [json-pointer:/view/"
                            f"blocks/{i}]")
        elif int(element.get("max_length", MAX_INPUT_LENGTH)) > MAX_INPUT_LENGTH:
            problems.append(f"[ERROR] max_length must be at most {MAX_INPUT_LENGTH} [json-pointer:/view/blocks/{i}/"
                            "element/max_length]")
        elif len(str(element.get("initial_value", ""))) > int(element.get("max_length", MAX_INPUT_LENGTH)):
            problems.append(f"[ERROR] initial_value is longer than max_length [json-pointer:/view/blocks/{i}/element]")
    return problems


class Views:
    """The workspace's trigger ids and the modals open for each user."""

    def __init__(self, clock: Callable[[], float], *, team_id: str, app_id: str, bot_id: str) -> None:
        self.clock = clock
        self.team_id, self.app_id, self.bot_id = team_id, app_id, bot_id
        self.triggers: dict[str, Trigger] = {}
        self.open: dict[str, dict[str, Any]] = {}  # view id -> the view as Slack stores it
        self.owner: dict[str, str] = {}  # view id -> user who sees it
        self._ids = Sequence()

    def issue_trigger(self, user: str) -> str:
        trigger_id = f"{int(self.clock() * 1000)}.{int(self.clock())}.{opaque(32)}"
        self.triggers[trigger_id] = Trigger(user, self.clock())
        return trigger_id

    def _exchange(self, trigger_id: str) -> str:
        trigger = self.triggers.get(trigger_id)
        if trigger is None:
            raise ApiError("invalid_trigger_id")
        if trigger.used:
            raise ApiError("exchanged_trigger_id")
        if self.clock() - trigger.issued_at > TRIGGER_SECONDS:
            raise ApiError("expired_trigger_id")
        trigger.used = True
        return trigger.user

    def _stored(self, view: dict[str, Any], view_id: str) -> dict[str, Any]:
        problems = _problems(view)
        if problems:
            raise ApiError("invalid_arguments", problems)
        stored = copy.deepcopy(view)
        stored.update(id=view_id, team_id=self.team_id, app_id=self.app_id, bot_id=self.bot_id,
                      hash=f"{int(self.clock())}.{opaque(8)}", root_view_id=view_id, previous_view_id=None,
                      state={"values": {}}, app_installed_team_id=self.team_id)
        for key, default in (("private_metadata", ""), ("callback_id", ""), ("external_id", ""),
                             ("clear_on_close", False), ("notify_on_close", False)):
            stored.setdefault(key, default)
        for i, block in enumerate(stored["blocks"]):
            block.setdefault("block_id", f"b{i}")
        return stored

    def open_view(self, trigger_id: str, view: Any) -> dict[str, Any]:
        problems = _problems(view)  # checked first: a refused view does not use up the trigger
        if problems:
            raise ApiError("invalid_arguments", problems)
        user = self._exchange(str(trigger_id or ""))
        stored = self._stored(view, self._ids.next("V"))
        self.open[stored["id"]], self.owner[stored["id"]] = stored, user
        return stored

    def update_view(self, view_id: str | None, external_id: str | None, hash_: str | None,
                    view: Any) -> dict[str, Any]:
        found = self.open.get(view_id or "") or next(
            (v for v in self.open.values() if external_id and v["external_id"] == external_id), None)
        if found is None:
            raise ApiError("not_found")
        if hash_ and hash_ != found["hash"]:
            raise ApiError("hash_conflict")
        stored = self._stored(view, found["id"])
        self.open[found["id"]] = stored
        return stored

    def of_user(self, user: str) -> list[dict[str, Any]]:
        return [view for view_id, view in self.open.items() if self.owner[view_id] == user]

    def filled(self, view_id: str, values: dict[str, str]) -> dict[str, Any]:
        """The open view with the user's input as `state.values`, keyed by block and action id as Slack sends it."""
        view = copy.deepcopy(self.open[view_id])
        state: dict[str, dict[str, Any]] = {}
        for block in view["blocks"]:
            element = block.get("element") if block.get("type") == "input" else None
            if element and element["action_id"] in values:
                state[block["block_id"]] = {element["action_id"]: {"type": element["type"],
                                                                     "value": values[element["action_id"]]}}
        unknown = set(values) - {a for entry in state.values() for a in entry}
        if unknown:
            raise LookupError(f"view {view_id} has no input with action_id {', '.join(sorted(unknown))}")
        view["state"] = {"values": state}
        return view

    def answer(self, view_id: str, ack: Any) -> None:
        """Apply the app's ack of a view_submission: close, keep open with errors, or replace the view."""
        action = ack.get("response_action") if isinstance(ack, dict) else None
        if action == "update":
            self.open[view_id] = self._stored(ack.get("view"), view_id)
        elif action != "errors":
            self.open.pop(view_id, None)
