"""Helpers shared by the OpenAI sandbox tests: a real SDK client, the bot's response_format, polling."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

import openai

from bot.prompts.encodings import encoding_for_model
from tests.waiting import until


def client(sandbox, api_key: str = "sk-sandbox", max_retries: int = 0) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=sandbox.url, api_key=api_key, max_retries=max_retries)


def classification_format(choices: list[str]) -> dict:
    """The response_format bot/prompts/templates.py sends (the contract between the bot and the sandbox)."""
    return {"type": "json_schema", "json_schema": {"name": "classification", "strict": True, "schema": {
        "type": "object", "properties": {"label": {"type": "string", "enum": choices}},
        "required": ["label"], "additionalProperties": False}}}


def cookbook_prompt_tokens(model: str, messages: list[dict]) -> int:
    """openai-cookbook How_to_count_tokens_with_tiktoken, written out independently of the sandbox's code."""
    encoding = encoding_for_model(model)
    total = 3
    for message in messages:
        total += 3 + sum(len(encoding.encode(value)) for value in message.values())
        total += 1 if "name" in message else 0
    return total


def jsonl(rows: list[dict]) -> bytes:
    return "".join(json.dumps(row) + "\n" for row in rows).encode()


async def wait_until(fetch: Callable[[], Awaitable], done: Callable[[object], bool], seconds: float = 15.0):
    """Poll `fetch` until `done(result)`, and return that result."""

    async def finished():
        result = await fetch()
        return result if done(result) else None

    return await until(finished, within=seconds, what="the fetched object to be done")
