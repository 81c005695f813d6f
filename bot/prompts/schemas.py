"""The JSON Schema of an extract run: typed as `fields=name:string,amount:number`, or shared in the thread as a .json
file; made strict and checked against what OpenAI's Structured Outputs accept before any request is sent.

OpenAI's rules (Structured Outputs guide, "Supported schemas"; /work/notes/graders.md section 4): the root is an
object and not an `anyOf`; every object lists all its properties in `required` and sets `additionalProperties:
false`; `allOf`, `not`, `if`/`then`/`else`, `dependentRequired`, `dependentSchemas` (and `patternProperties`) are not
supported; at most 5000 object properties in all, 10 levels of nesting, 1000 enum values, and 120,000 characters of
property names, definition names, enum and const values. A schema the team shares is made strict the way
openai-python's `to_strict_json_schema` does (every object gets `additionalProperties: false` and all its properties
required) and then checked; an optional field is written as a union with null (`"type": ["string", "null"]`, or
`note:string?` in `fields=`).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from typing import Any

from bot.core.errors import SpecError

MAX_PROPERTIES = 5000
MAX_DEPTH = 10
MAX_ENUM_VALUES = 1000
MAX_CHARS = 120_000
UNSUPPORTED = ("allOf", "not", "if", "then", "else", "dependentRequired", "dependentSchemas", "patternProperties")
FIELD_TYPES = ("string", "number", "integer", "boolean")
_FIELD = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_NAME = "extraction"


def fields_schema(raw: str) -> dict[str, Any]:
    """The strict object schema of `name:type,...` (types string, number, integer, boolean; `?` after the type: the
    field may be null)."""
    properties: dict[str, Any] = {}
    for part in (p.strip() for p in raw.split(",")):
        if not part:
            continue
        name, _, kind = (s.strip() for s in part.partition(":"))
        optional = kind.endswith("?")
        kind = (kind.rstrip("?") or "string").lower()
        if not _FIELD.match(name):
            raise SpecError(f"fields: {name!r} cannot be a field name; use letters, digits and _ (invoice_total).")
        if kind not in FIELD_TYPES:
            raise SpecError(f"fields: {name} has type {kind!r}; types are {', '.join(FIELD_TYPES)} (add ? when it "
                            "may be empty: note:string?). For anything richer, share a JSON Schema file in the thread.")
        if name in properties:
            raise SpecError(f"fields: {name} is listed twice. List each field once.")
        properties[name] = {"type": [kind, "null"] if optional else kind}
    if not properties:
        raise SpecError("fields: no fields given. Write fields=name:string,amount:number (types string, number, "
                        "integer, boolean).")
    return strict_schema({"type": "object", "properties": properties})


def schema_from_text(text: str, source: str = "The schema") -> dict[str, Any]:
    """A schema from JSON text: a bare JSON Schema, or OpenAI's response_format wrapper around one."""
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise SpecError(f"{source} is not valid JSON ({exc}). Share a JSON Schema such as "
                        '{"type": "object", "properties": {"name": {"type": "string"}}}.') from None
    if isinstance(value, dict) and isinstance(value.get("json_schema"), dict):
        value = value["json_schema"]
    if isinstance(value, dict) and isinstance(value.get("schema"), dict) and "type" not in value:
        value = value["schema"]
    if not isinstance(value, dict):
        raise SpecError(f"{source} is not a JSON object. Share a JSON Schema whose root is an object.")
    return strict_schema(value)


def strict_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A copy made strict (see the module docstring) and checked; SpecError names the first rule it breaks."""
    strict = copy.deepcopy(schema)
    if strict.get("type") != "object" or "anyOf" in strict:
        raise SpecError("The schema's root must be an object (\"type\": \"object\") and not an anyOf: OpenAI's "
                        "structured outputs return one JSON object per answer.")
    strict.pop("$schema", None)
    _strictify(strict)
    _check(strict)
    return strict


def _strictify(node: Any) -> None:
    if isinstance(node, list):
        for item in node:
            _strictify(item)
        return
    if not isinstance(node, dict):
        return
    if node.get("type") == "object" or (isinstance(node.get("type"), list) and "object" in node["type"]):
        node.setdefault("properties", {})
        node["additionalProperties"] = False
        node["required"] = list(node["properties"])
    for key in ("properties", "$defs", "definitions"):
        for child in (node.get(key) or {}).values():
            _strictify(child)
    for key in ("items", "anyOf"):
        if key in node:
            _strictify(node[key])


def _walk(node: Any, depth: int = 0) -> Iterator[tuple[dict[str, Any], int]]:
    if not isinstance(node, dict):
        return
    yield node, depth
    for key in ("properties", "$defs", "definitions"):
        for child in (node.get(key) or {}).values():
            yield from _walk(child, depth + (key == "properties"))
    children = node.get("items")
    for child in (children if isinstance(children, list) else [children]):
        yield from _walk(child, depth)
    for child in node.get("anyOf") or []:
        yield from _walk(child, depth)


def _check(schema: dict[str, Any]) -> None:
    properties = depth = enums = chars = 0
    for node, level in _walk(schema):
        bad = [key for key in UNSUPPORTED if key in node]
        if bad:
            raise SpecError(f"The schema uses {bad[0]}, which OpenAI's structured outputs do not support "
                            f"(nor {', '.join(k for k in UNSUPPORTED if k != bad[0])}). Rewrite it without.")
        names = list(node.get("properties") or {}) + list(node.get("$defs") or {}) + list(node.get("definitions")
                                                                                                or {})
        properties += len(node.get("properties") or {})
        depth = max(depth, level)
        values = node.get("enum") or []
        enums += len(values)
        chars += sum(len(n) for n in names) + sum(len(str(v)) for v in values)
        chars += len(str(node["const"])) if "const" in node else 0
    for count, limit, what in ((properties, MAX_PROPERTIES, "object properties"), (enums, MAX_ENUM_VALUES,
                                                                                    "enum values"),
                               (chars, MAX_CHARS, "characters of names and enum values")):
        if count > limit:
            raise SpecError(f"The schema has {count:,} {what}; OpenAI's structured outputs take at most {limit:,}. "
                            "Make it smaller.")
    if depth > MAX_DEPTH:
        raise SpecError(f"The schema nests objects {depth} levels deep; OpenAI's structured outputs take at most "
                        f"{MAX_DEPTH}. Flatten it.")


def response_format(schema: dict[str, Any]) -> dict[str, Any]:
    return {"type": "json_schema", "json_schema": {"name": _NAME, "strict": True, "schema": schema}}


def field_names(schema: dict[str, Any]) -> list[str]:
    return list(schema.get("properties") or {})
