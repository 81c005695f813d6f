"""slack-app-manifest.yml asks for what the bot uses and nothing more (least privilege; issue 19: `users:read` was
asked for and never used)."""

from __future__ import annotations

from pathlib import Path

import yaml

from sandbox.slack.scopes import FILES_READ, METHOD_SCOPES
from tests.handlers.conftest import thread_texts

MANIFEST = Path(__file__).resolve().parents[2] / "slack-app-manifest.yml"
# Scopes that let Slack send events or commands, which no Web API call of the bot needs.
EVENT_SCOPES = {"commands", "channels:history", "groups:history"}


def manifest_scopes() -> set[str]:
    return set(yaml.safe_load(MANIFEST.read_text())["oauth_config"]["scopes"]["bot"])


async def test_a_run_with_exactly_the_manifests_scopes_uses_every_one_of_them(make_bot, slack_sandbox):
    """Upload, approval by a user group, collection, the baseline table and its chart: with the token granted only
    the manifest's scopes, everything works, and every Web API scope the manifest lists is one a call needed."""
    slack_sandbox.scopes = manifest_scopes()
    slack_sandbox.add_usergroup("S0APPROVERS", ["bob"])
    bot = await make_bot(DISTILL_APPROVERS="S0APPROVERS")
    await bot.ready_run("tickets")
    await bot.command("collect tickets")
    request = next(m for m in await bot.thread("tickets") if "Spending request" in "".join(thread_texts([m])))
    await bot.click(request["ts"], "approve", user="bob")
    assert (await bot.run("tickets")).state == "collected"
    assert all(call.ok for call in slack_sandbox.calls), [c.method for c in slack_sandbox.calls if not c.ok]
    used = {METHOD_SCOPES[c.method] for c in slack_sandbox.calls if c.method in METHOD_SCOPES}
    used |= {FILES_READ} if slack_sandbox.downloads else set()
    assert "files:write" in used, "the baseline chart was uploaded"
    assert manifest_scopes() - EVENT_SCOPES == used
