"""Token counts of chat requests, with OpenAI cookbook's formula (How_to_count_tokens_with_tiktoken.ipynb).

Each message costs 3 tokens plus the tokens of each of its string values (+1 when it has a "name"), and the
reply is primed with 3 more. Content given as a list of parts counts its text parts. Real OpenAI also adds
tokens for a `response_format` schema; the sandbox does not, so its counts equal the bot's estimate exactly.
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.prompts.encodings import encoding_for_model

TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
REPLY_PRIMING_TOKENS = 3


def count_tokens(model: str, text: str) -> int:
    # encode_ordinary: user data may contain "<|endoftext|>", which the API counts as plain text.
    return len(encoding_for_model(model).encode_ordinary(text))


def content_text(content: object) -> str:
    """The text of a message's content: a string, or the text parts of a list."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


def message_tokens(model: str, messages: Sequence[dict]) -> int:
    """Tokens of the messages without the reply priming: what one training example costs."""
    total = 0
    for message in messages:
        total += TOKENS_PER_MESSAGE
        for key, value in message.items():
            if key == "content":
                total += count_tokens(model, content_text(value))
            elif isinstance(value, str):
                total += count_tokens(model, value)
            if key == "name":
                total += TOKENS_PER_NAME
    return total


def prompt_tokens(model: str, messages: Sequence[dict]) -> int:
    return message_tokens(model, messages) + REPLY_PRIMING_TOKENS


def last_user_text(messages: Sequence[dict]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            return content_text(message.get("content"))
    return ""
