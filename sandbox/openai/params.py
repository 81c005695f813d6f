"""Checks on request parameters shared by every endpoint, with OpenAI's wording for the mistakes."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from sandbox.openai.errors import bad_request

# Limits of the `metadata` map (platform.openai.com/docs/api-reference, "metadata" on every object).
_METADATA_KEYS = 16
_METADATA_KEY_CHARS = 64
_METADATA_VALUE_CHARS = 512


async def json_body(request: web.Request) -> dict:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise bad_request(
            "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP "
            "library correctly. The OpenAI API expects a JSON payload.)"
        ) from None
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.")
    return body


def required_str(body: dict, name: str) -> str:
    value = body.get(name)
    if value is None:
        raise bad_request(f"Missing required parameter: '{name}'.", param=name, code="missing_required_parameter")
    if not isinstance(value, str) or not value:
        raise bad_request(f"Invalid type for '{name}': expected a non-empty string, but got {value!r} instead.",
                          param=name, code="invalid_type")
    return value


def optional_int(body: dict, name: str, minimum: int = 1, maximum: int | None = None) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum or (maximum and value > maximum):
        bound = f"between {minimum} and {maximum}" if maximum else f"at least {minimum}"
        raise bad_request(f"Invalid '{name}': {value!r}. Expected an integer {bound}.", param=name,
                          code="invalid_value")
    return value


def metadata(body: dict, name: str = "metadata") -> dict[str, str]:
    value: Any = body.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise bad_request(f"Invalid type for '{name}': expected an object of strings.", param=name,
                          code="invalid_type")
    if len(value) > _METADATA_KEYS:
        raise bad_request(f"Invalid '{name}': too many keys ({len(value)}); at most {_METADATA_KEYS} are allowed.",
                          param=name)
    for key, item in value.items():
        if len(key) > _METADATA_KEY_CHARS or not isinstance(item, str) or len(item) > _METADATA_VALUE_CHARS:
            raise bad_request(
                f"Invalid '{name}.{key}': keys are strings of at most {_METADATA_KEY_CHARS} characters and values "
                f"strings of at most {_METADATA_VALUE_CHARS}.", param=f"{name}.{key}")
    return dict(value)


def metadata_filter(request: web.Request) -> dict[str, str]:
    """`metadata[key]=value` query parameters, as the openai SDK encodes a metadata filter."""
    return {k[len("metadata[") : -1]: v for k, v in request.query.items() if k.startswith("metadata[") and k[-1] == "]"}
