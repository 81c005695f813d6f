"""How the sandbox's stand-ins fill the free fields of a JSON Schema (an extraction): by reading key words.

The prompt is cut into segments (sentences, lines, clauses between ; or ,). A field is read from the first segment that
holds one of its key words: the value is what follows the key word (after a ':' or a word such as "is"): a number for a
number field, yes/no for a boolean, the rest of the segment for text. A field's key words are the words of its name
and, for the teacher, a few synonyms it knows (KNOWN_KEYS: a "client" is a customer, a "total" an amount).

- The teacher knows every key word.
- A base student sees each key word with a seeded 50% chance (as the lexical classifier hides words), so it misses
  fields whose key it cannot see.
- A fine-tuned student learns key words from its training file (`learn_keys`): for each field of each answer it finds
  the value in the prompt and credits the word just before it; a word credited at least twice for a field becomes one
  of that field's keys.
A field that cannot be read gets the schema's plain default (0, false, or the summary text).
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sandbox.openai.text import seeded_index, stem, terms, words

KNOWN_KEYS = {
    "customer": "client buyer company", "amount": "total due sum price cost", "date": "dated day", "name": "called",
    "email": "mail", "phone": "telephone tel", "paid": "settled", "city": "town", "country": "nation",
    "quantity": "qty count units", "category": "type kind", "priority": "urgency severity",
}
_SEGMENT = re.compile(r"[.;\n]\s+|[.;\n]$|,\s+")
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")
_AFTER_KEY = re.compile(r"^[\s:=\-]*(?:(?:is|was|of|are|were)\s+)?", re.IGNORECASE)
_TRUE, _FALSE = {"yes", "true", "paid", "settled", "done", "y"}, {"no", "false", "unpaid", "open", "pending", "n"}


def _keys(name: str, known: Mapping[str, str] | None) -> set[str]:
    found = set(terms(name.replace("_", " ")))
    for word in list(found):
        found |= set(terms((known or {}).get(word, "")))
    for part in name.lower().split("_"):
        found |= set(terms((known or {}).get(part, "")))
    return found


@dataclass(frozen=True)
class FieldReader:
    """Reads fields by key words; `learned` holds key words per field name learned from a training file."""

    known: Mapping[str, str] = field(default_factory=lambda: KNOWN_KEYS)
    seed: int = 0
    recall: float = 1.0
    learned: Mapping[str, frozenset[str]] = field(default_factory=dict)

    def _visible(self, term: str) -> bool:
        return self.recall >= 1.0 or seeded_index(self.seed, "vocabulary:" + term, 1000) < self.recall * 1000

    def keys(self, name: str) -> set[str]:
        return {k for k in _keys(name, self.known) if self._visible(k)} | set(self.learned.get(name, ()))

    def read(self, prompt: str, name: str, kind: str) -> Any:
        """The field's value read from the prompt, or None when no segment holds one of its key words."""
        keys = self.keys(name)
        for segment in (s.strip() for s in _SEGMENT.split(prompt) if s and s.strip()):
            tokens = re.findall(r"[^\W_]+|\S", segment)
            for position, token in enumerate(tokens):
                if stem(token.lower()) in keys:
                    rest = _rest(segment, token, position, tokens)
                    value = _typed(rest, kind)
                    if value is not None:
                        return value
        return None


def _rest(segment: str, token: str, position: int, tokens: list[str]) -> str:
    """The text of the segment after its `position`-th token."""
    start = 0
    for t in tokens[:position + 1]:
        start = segment.find(t, start) + len(t)
    return _AFTER_KEY.sub("", segment[start:]).strip()


def _typed(text: str, kind: str) -> Any:
    if kind in ("number", "integer"):
        match = _NUMBER.search(text)
        if not match:
            return None
        value = float(match.group(0).replace(",", ""))
        return int(value) if kind == "integer" or value.is_integer() else value
    if kind == "boolean":
        first = next(iter(words(text)), "")
        return True if first in _TRUE else False if first in _FALSE else None
    return text or None


def learn_keys(examples: Iterable[tuple[str, str]], min_count: int = 2) -> dict[str, frozenset[str]]:
    """Key words per field from (prompt, JSON answer) pairs (see the module docstring)."""
    credit: dict[str, Counter[str]] = defaultdict(Counter)
    for prompt, answer in examples:
        try:
            value = json.loads(answer)
        except ValueError:
            continue
        if not isinstance(value, dict):
            continue
        lowered = prompt.lower()
        for name, found in value.items():
            if isinstance(found, bool) or found is None or found == "":
                continue
            text = str(int(found)) if isinstance(found, float) and found.is_integer() else str(found)
            at = lowered.find(text.lower())
            if at > 0:
                before = [t for t in terms(prompt[:at]) if not t.isdigit()][-1:]
                for term in before:
                    credit[name][term] += 1
    return {name: frozenset(t for t, n in counts.items() if n >= min_count) for name, counts in credit.items()}
