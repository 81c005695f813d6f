"""OAuth scopes: which bot scope each Web API method needs, as listed on each method's reference page
(https://docs.slack.dev/reference/methods). A token without it gets `missing_scope` with `needed` and
`provided`; a file download without files:read gets Slack's sign-in page.
"""

from __future__ import annotations

METHOD_SCOPES = {
    "chat.postMessage": "chat:write",
    "chat.update": "chat:write",
    "chat.postEphemeral": "chat:write",
    "conversations.replies": "channels:history",
    "users.info": "users:read",
    "usergroups.users.list": "usergroups:read",
    "files.info": "files:read",
    "files.getUploadURLExternal": "files:write",
    "files.completeUploadExternal": "files:write",
}
FILES_READ = "files:read"
# What the sandbox's bot token is granted unless a test revokes some: every scope the methods above need.
BOT_SCOPES = frozenset({*METHOD_SCOPES.values(), "commands"})


def missing_scope(needed: str, granted: set[str]) -> dict[str, object]:
    return {"ok": False, "error": "missing_scope", "needed": needed, "provided": ",".join(sorted(granted))}
