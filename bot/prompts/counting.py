"""Exact token counts of many prompts rendered from one template, without encoding each prompt.

tiktoken splits a text into pre-tokens with a regex and runs BPE inside each pre-token; no merge crosses a
pre-token boundary, so a text's count is the sum of the counts of its pieces when it is cut at boundaries.
A cut between characters `a` and `b` is *safe* when every text with `ab` there has a pre-token boundary
between them and cutting changes no pre-token on either side. The regexes look past a cut only through
`\\s+(?!\\S)` and `\\s++$`, which need `a` to be whitespace, so `a` never is. Going through each
alternative of the o200k_base and cl100k_base patterns (bot/prompts/encodings.py), these ASCII pairs are safe in both:

    a letter, digit or punctuation  ->  b space or tab     (no alternative takes blanks after non-blanks)
    a letter or digit               ->  b \\r or \\n         (only punctuation runs take trailing newlines)
    a letter or punctuation         ->  b digit            (digits only ever join digits)
    a digit                         ->  b letter           (a word's optional lead char is never a digit)
    a letter or digit               ->  b punctuation but '  (o200k glues 's 't 're... to the word before)

Anything else (letter->letter, digit->digit, punctuation->punctuation, any non-ASCII character) is left
alone. Each template literal and each distinct field value is cut at its first and last safe position
into head, core and tail. Cores are counted once per distinct string; the junctions between cores (a tail,
any strings with no safe position, the next head) once per distinct junction. The sum equals
`len(encoding.encode_ordinary(prompt))` for every row (tests/costs/test_quotes_exactness.py proves it on thousands
of rows and with hypothesis). encode_ordinary is what the API counts: text such as "<|endoftext|>" in a
row is ordinary text to it.
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import tiktoken

from bot.prompts.templates import Template


def _char_class(chars: str) -> str:
    return "[" + "".join("\\" + c if c in "\\]^-[" else c for c in chars) + "]"


_LETTER = string.ascii_letters
_DIGIT = string.digits
_PUNCT = string.punctuation
_SAFE_PAIRS = (
    (_LETTER + _DIGIT + _PUNCT, " \t"),
    (_LETTER + _DIGIT, "\r\n"),
    (_LETTER + _PUNCT, _DIGIT),
    (_DIGIT, _LETTER),
    (_LETTER + _DIGIT, _PUNCT.replace("'", "")),
)
# A zero-width match at each safe cut; the reversed pattern finds the last cut by searching the reversed text.
SAFE_CUT = re.compile("|".join(f"(?<={_char_class(a)})(?={_char_class(b)})" for a, b in _SAFE_PAIRS))
_SAFE_CUT_REVERSED = re.compile("|".join(f"(?<={_char_class(b)})(?={_char_class(a)})" for a, b in _SAFE_PAIRS))


def safe_cuts(text: str) -> tuple[int, int] | None:
    """The first and last safe cut positions inside `text`, or None when it has none."""
    first = SAFE_CUT.search(text)
    if first is None:
        return None
    last = _SAFE_CUT_REVERSED.search(text[::-1])
    assert last is not None
    return first.start(), len(text) - last.start()


@dataclass
class _Column:
    """One position of the rendered text (a literal or a field) across rows, by distinct value."""

    codes: np.ndarray  # per row: index into the arrays below
    opaque: np.ndarray  # per distinct value: no safe cut inside
    head: np.ndarray  # per distinct value: interned id of the text before the first cut (or the whole text)
    tail: np.ndarray  # interned id of the text after the last cut (or the whole text)
    core_tokens: np.ndarray  # tokens between the first and the last cut


class TokenCache:
    """Token counts by text for one encoding: each distinct text is encoded once."""

    def __init__(self, encoding: tiktoken.Encoding) -> None:
        self.encoding = encoding
        self._tokens: dict[str, int] = {}

    def count_texts(self, texts: Sequence[str]) -> np.ndarray:
        cache = self._tokens
        encode = self.encoding.encode_ordinary
        cache.update((t, len(encode(t))) for t in dict.fromkeys(texts) if t not in cache)
        return np.fromiter((cache[t] for t in texts), dtype=np.int64, count=len(texts))

    def count(self, text: str) -> int:
        found = self._tokens.get(text)
        if found is None:
            found = self._tokens[text] = len(self.encoding.encode_ordinary(text))
        return found


class PromptCounter:
    """Counts the tokens of prompts rendered from `template` (with {choices} already bound)."""

    def __init__(self, template: Template, encoding: tiktoken.Encoding) -> None:
        self.template = template
        self.cache = TokenCache(encoding)
        self._texts: list[str] = []
        self._ids: dict[str, int] = {}

    def count(self, columns: Sequence[Sequence[str]], rows: int) -> np.ndarray:
        """Tokens of each of `rows` rendered rows; `columns[i][r]` is the rendered value of field i in row r."""
        if len(columns) != len(self.template.fields) or any(len(c) != rows for c in columns):
            raise ValueError(f"expected {len(self.template.fields)} columns of {rows} values")
        if rows == 0:
            return np.zeros(0, dtype=np.int64)
        parts: list[_Column] = []
        for index, literal in enumerate(self.template.literals):
            parts.append(self._column([literal], np.zeros(rows, dtype=np.intp)))
            if index < len(columns):
                codes, uniques = pd.factorize(np.asarray(columns[index], dtype=object), use_na_sentinel=False)
                parts.append(self._column(list(uniques), codes))
        totals = np.zeros(rows, dtype=np.int64)
        for part in parts:
            totals += part.core_tokens[part.codes]
        pattern, first = _row_keys([part.opaque[part.codes] for part in parts])
        for number, example in enumerate(first):
            selected = np.flatnonzero(pattern == number)
            opaque = [bool(part.opaque[part.codes[example]]) for part in parts]
            for junction in _junctions(opaque):
                totals[selected] += self._junction_tokens(parts, junction, selected)
        return totals

    def _intern(self, text: str) -> int:
        found = self._ids.get(text)
        if found is None:
            found = self._ids[text] = len(self._texts)
            self._texts.append(text)
        return found

    def _column(self, uniques: list[str], codes: np.ndarray) -> _Column:
        size = len(uniques)
        opaque = np.zeros(size, dtype=bool)
        head = np.empty(size, dtype=np.int64)
        tail = np.empty(size, dtype=np.int64)
        cores: list[str] = []
        for index, text in enumerate(uniques):
            cuts = safe_cuts(text)
            if cuts is None:
                opaque[index] = True
                head[index] = tail[index] = self._intern(text)
                cores.append("")
            else:
                first, last = cuts
                head[index] = self._intern(text[:first])
                tail[index] = self._intern(text[last:])
                cores.append(text[first:last])
        return _Column(codes, opaque, head, tail, self.cache.count_texts(cores))

    def _junction_tokens(self, parts: list[_Column], junction: list[tuple[int, str]], rows: np.ndarray) -> np.ndarray:
        """Tokens of one junction in each of `rows`, each distinct junction text encoded once."""
        pieces = []
        for position, kind in junction:
            part = parts[position]
            ids = part.tail if kind == "tail" else part.head  # an opaque part's head is its whole text
            pieces.append(ids[part.codes[rows]])
        key, first = _row_keys(pieces)
        texts = ["".join(self._texts[ids[row]] for ids in pieces) for row in first]
        return self.cache.count_texts(texts)[key]


def _row_keys(columns: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Dense codes of the rows' value tuples (hashing, no sort) and the first row holding each code."""
    key = np.zeros(len(columns[0]), dtype=np.int64)
    for column in columns:
        key, _ = pd.factorize(key * (int(column.max()) + 1) + column)
    first = np.empty(int(key.max()) + 1, dtype=np.intp)
    first[key[::-1]] = np.arange(len(key) - 1, -1, -1)
    return key, first


def _junctions(opaque: Sequence[bool]) -> list[list[tuple[int, str]]]:
    """The text between consecutive cores: a tail, every opaque part after it whole, and the next head."""
    junctions: list[list[tuple[int, str]]] = []
    current: list[tuple[int, str]] = []
    for position, is_opaque in enumerate(opaque):
        if is_opaque:
            current.append((position, "whole"))
        else:
            current.append((position, "head"))
            junctions.append(current)
            current = [(position, "tail")]
    junctions.append(current)
    return junctions
