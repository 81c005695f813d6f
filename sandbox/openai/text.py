"""Words for the sandbox classifiers: case and accents folded, light stemming, stop words dropped."""

from __future__ import annotations

import hashlib
import re
import unicodedata

_WORD = re.compile(r"[a-z0-9]+")
STOP_WORDS = frozenset(
    "a an and are as at be but by de des du for from has have in is it its la le les of on or that the this "
    "to was with".split()
)


def fold(text: str) -> str:
    """Lower case without accents: 'Gewürztraminer' -> 'gewurztraminer', 'Rosé' -> 'rose'."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).lower()


def stem(word: str) -> str:
    """A crude suffix stripper so 'cherries'/'cherry' and 'spiced'/'spice' meet; enough for overlap scoring."""
    if len(word) <= 3:
        return word
    if word.endswith("ies") and len(word) > 4:
        word = word[:-3] + "y"
    elif word.endswith("s") and not word.endswith("ss"):
        word = word[:-1]
    for suffix in ("ing", "ed", "ly"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)]
            break
    if word.endswith("e") and len(word) > 3:
        word = word[:-1]
    return word


def words(text: str) -> list[str]:
    """Folded words of `text`, stop words included (the choice-list detector needs them)."""
    return _WORD.findall(fold(text))


def terms(text: str) -> list[str]:
    """Stemmed content words: what the classifiers count."""
    return [stem(w) for w in words(text) if w not in STOP_WORDS]


def seeded_index(seed: int, text: str, n: int) -> int:
    """A deterministic choice among n, from the seed and the text (sha256, stable across processes)."""
    digest = hashlib.sha256(f"{seed}\x00{text}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % n
