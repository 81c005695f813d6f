"""Making text safe for Slack's mrkdwn.

Slack reads `&`, `<` and `>` as control characters: `<!channel>` pings everyone, `<http://x|y>` is a link
(https://docs.slack.dev/messaging/formatting-message-text#escaping). Anything a person or a CSV wrote is
escaped before it enters a message; only mentions of single users and user groups that the bot itself
writes survive `escape_keep_mentions`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from bot.core.logs import mask_secrets

_MENTION = re.compile(r"&lt;(@[UW][A-Z0-9]+|!subteam\^S[A-Z0-9]+)&gt;")


def escape(text: object) -> str:
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def unescape(text: str) -> str:
    """Slash command text arrives escaped by Slack; the parser wants what the user typed."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def escape_keep_mentions(text: str) -> str:
    """Escape bot-written text but keep its `<@U…>` and `<!subteam^S…>` mentions (never `<!channel>`)."""
    return _MENTION.sub(r"<\1>", escape(text))


def mention(user_or_group: str) -> str:
    return f"<!subteam^{user_or_group}>" if user_or_group.startswith("S") else f"<@{user_or_group}>"


def code(text: str) -> str:
    """Inline code; backticks inside would end it early, so they become a look-alike."""
    return f"`{escape(text).replace('`', 'ˋ')}`"


def masked(value: Any, secrets: Iterable[str]) -> Any:
    """Every string inside a message payload with credentials masked: the last check before Slack sees it."""
    secrets = tuple(secrets)
    if isinstance(value, str):
        return mask_secrets(value, secrets)
    if isinstance(value, list):
        return [masked(item, secrets) for item in value]
    if isinstance(value, dict):
        return {key: masked(item, secrets) for key, item in value.items()}
    return value
