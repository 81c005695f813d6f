"""Structured outputs: OpenAI's strict-mode rules for a json_schema, and an answer that always validates.

Strict mode (platform.openai.com/docs/guides/structured-outputs, "Supported schemas") requires an object at
the root, `additionalProperties: false` on every object and every property listed in `required`; a schema
breaking those rules is refused with 400 before any token is spent, with the message shape OpenAI uses.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from sandbox.openai.errors import APIError, bad_request

_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")

Pick = Callable[[Sequence[Any]], Any]


def _context(path: tuple[str, ...]) -> str:
    return "(" + ", ".join(repr(p) for p in path) + ("," if len(path) == 1 else "") + ")"


def _resolve(schema: dict, root: dict) -> dict:
    ref = schema.get("$ref")
    if not ref:
        return schema
    node: Any = root
    for part in ref.removeprefix("#/").split("/"):
        node = node.get(part) if isinstance(node, dict) else None
    if not ref.startswith("#/") or not isinstance(node, dict):
        raise bad_request(f"Invalid schema: reference {ref!r} does not point to a definition in this schema.",
                          param="response_format")
    return node


def _types(schema: dict) -> list[str]:
    t = schema.get("type")
    return t if isinstance(t, list) else [t] if t else []


def _check_strict(schema: dict, root: dict, path: tuple[str, ...], fail: Callable[[str], APIError]) -> None:
    if "$ref" in schema:
        _resolve(schema, root)
        return
    for i, branch in enumerate(schema.get("anyOf", [])):
        _check_strict(branch, root, (*path, "anyOf", str(i)), fail)
    for name, definition in {**schema.get("$defs", {}), **schema.get("definitions", {})}.items():
        _check_strict(definition, root, (*path, "$defs", name), fail)
    if "object" in _types(schema):
        properties = schema.get("properties", {})
        if schema.get("additionalProperties") is not False:
            raise fail(f"In context={_context(path)}, 'additionalProperties' is required to be supplied and to "
                       "be false.")
        missing = [k for k in properties if k not in schema.get("required", [])]
        if missing:
            raise fail(f"In context={_context(path)}, 'required' is required to be supplied and to be an array "
                       f"including every key in properties. Missing '{missing[0]}'.")
        for name, prop in properties.items():
            _check_strict(prop, root, (*path, "properties", name), fail)
    if "array" in _types(schema) and isinstance(schema.get("items"), dict):
        _check_strict(schema["items"], root, (*path, "items"), fail)


def parse_json_schema(response_format: dict) -> dict:
    """The schema of a `json_schema` response_format; 400 when it is malformed or breaks the strict rules."""
    spec = response_format.get("json_schema")
    if not isinstance(spec, dict):
        raise bad_request("Missing required parameter: 'response_format.json_schema'.",
                          param="response_format.json_schema", code="missing_required_parameter")
    name = spec.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise bad_request(f"Invalid 'response_format.json_schema.name': {name!r}. Expected a string of letters, "
                          "digits, underscores or dashes, at most 64 long.", param="response_format.json_schema.name")
    schema = spec.get("schema", {})
    if not isinstance(schema, dict):
        raise bad_request("Invalid 'response_format.json_schema.schema': expected an object.",
                          param="response_format.json_schema.schema")
    if spec.get("strict") is True:
        def fail(detail: str) -> APIError:
            return bad_request(f"Invalid schema for response_format '{name}': {detail}", param="response_format")

        if _types(schema) != ["object"]:
            raise fail(f"schema must be a JSON Schema of 'type: \"object\"', got 'type: \"{schema.get('type')}\"'.")
        _check_strict(schema, schema, (), fail)
    return schema


Read = Callable[[str, str], Any]  # (property name, its type) -> the value read from the prompt, or None


def _read(name: str, prop: dict, read: Read | None) -> Any:
    """What `read` finds for a property of one plain type (string, number, integer, boolean), or None."""
    kinds = [t for t in _types(prop) if t != "null"]
    if read is None or "enum" in prop or "const" in prop or len(kinds) != 1 or kinds[0] not in (
            "string", "number", "integer", "boolean"):
        return None
    return read(name, kinds[0])


def fill(schema: dict, pick: Pick, text: Callable[[], str], root: dict | None = None, read: Read | None = None) -> Any:
    """A value valid against `schema`: enums are chosen by `pick`; a property of a plain type is what `read` finds
    for it, else free strings come from `text` and numbers and booleans are their plain defaults."""
    root = root or schema
    schema = _resolve(schema, root)
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return pick(schema["enum"])
    if "anyOf" in schema:
        branches = [_resolve(b, root) for b in schema["anyOf"]]
        usable = [b for b in branches if _types(b) != ["null"]] or branches
        return fill(usable[0], pick, text, root, read)
    types = [t for t in _types(schema) if t != "null"] or _types(schema) or ["object"]
    kind = types[0]
    if kind == "object":
        value = {}
        for name, prop in schema.get("properties", {}).items():
            found = _read(name, _resolve(prop, root), read)
            value[name] = found if found is not None else fill(prop, pick, text, root, read)
        return value
    if kind == "array":
        return [fill(schema.get("items", {}), pick, text, root, read) for _ in range(schema.get("minItems", 0))]
    if kind == "string":
        return text()
    if kind in ("integer", "number"):
        return schema.get("minimum", 0)
    if kind == "boolean":
        return False
    return None
