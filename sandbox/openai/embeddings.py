"""`POST /v1/embeddings`: vectors that carry meaning, with OpenAI's reply shape, limits, usage and errors.

A vector is a signed feature hash of the text, L2-normalised: each stemmed content word (sandbox/openai/text.py)
counts 1 + log(its count), and each of its character trigrams a fifth of that, added at the position and with
the sign a keyed hash of the feature picks (keyed by the model, so text-embedding-3-small and -large disagree
as two real models would). Texts that share words or word pieces are near by cosine, texts that share none are
near-orthogonal, and the same text always gets the same vector. `dimensions` shortens a vector the way OpenAI
describes for its text-embedding-3 models: its first `dimensions` numbers, normalised again.

The request as OpenAI takes it (openapi.yaml, CreateEmbeddingRequest): `input` is a string, a list of strings,
a list of token ids or a list of such lists; at most 2048 inputs, none empty, each within the model's 8,192
tokens, and at most 300,000 tokens in one request. Token ids are read with the model's own encoding
(cl100k_base for text-embedding-3), so a text and its tokens embed alike. `usage.prompt_tokens` (and
`total_tokens`, the same) counts every input's tokens with that encoding. `encoding_format` is `float` (the
default) or `base64`: the little-endian float32 bytes, base64-encoded, which the openai SDK asks for unless told
otherwise and decodes itself.

Errors as OpenAI words them: an empty input or a list over 2048 is "'$.input' is invalid..." (400, the
message openai-python issue 576 and others quote); an input over the limit is "Invalid 'input[i]': maximum
input length is 8192 tokens." (400); a request over 300,000 tokens is "Requested N tokens, max 300000 tokens
per request" (400, type and code `max_tokens_per_request`); a chat model is "You are not allowed to generate
embeddings from this model" (403). The wording of a `dimensions` above the model's own is the sandbox's (no
capture of OpenAI's was found).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import math
from collections import Counter
from collections.abc import Sequence

import numpy as np
from aiohttp import web

from bot.tokens import encoding_for_model
from sandbox.openai.errors import APIError, bad_request
from sandbox.openai.models import Model, ModelCatalog
from sandbox.openai.params import json_body, required_str
from sandbox.openai.ratelimit import RateLimiter
from sandbox.openai.requestlog import RECORD_KEY, RequestRecord
from sandbox.openai.text import fold, terms

MAX_INPUTS = 2048
MAX_INPUT_TOKENS = 8192
MAX_REQUEST_TOKENS = 300_000
# Each model's own vector size (OpenAI's embeddings guide: 1536 for -small, 3072 for -large).
DIMENSIONS = {"text-embedding-3-small": 1536, "text-embedding-3-large": 3072}
TRIGRAM_WEIGHT = 0.2
_INVALID_INPUT = "'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference."


@functools.lru_cache(maxsize=200_000)
def _slot(family: str, feature: str, dimensions: int) -> tuple[int, float]:
    """Where a feature lands in the model's vector, and with which sign."""
    digest = hashlib.blake2b(feature.encode(), digest_size=8, key=family.encode()[:64]).digest()
    number = int.from_bytes(digest, "big")
    return number % dimensions, 1.0 if number >> 63 else -1.0


def _features(text: str) -> Counter[str]:
    """Weighted features of a text: its stemmed words and their character trigrams."""
    words = Counter(terms(text))
    if not words:  # only stop words or punctuation: the folded text itself stands for it
        return Counter({"text:" + fold(text).strip(): 1.0})
    features: Counter[str] = Counter()
    for word, count in words.items():
        weight = 1.0 + math.log(count)
        features["word:" + word] += weight
        padded = f"<{word}>"
        for i in range(len(padded) - 2):
            features["tri:" + padded[i:i + 3]] += TRIGRAM_WEIGHT * weight
    return features


def embed_text(family: str, text: str, dimensions: int | None = None) -> np.ndarray:
    """The unit-length float32 vector of `text` for the model `family`, shortened to `dimensions` when given."""
    size = DIMENSIONS[family]
    vector = np.zeros(size, dtype=np.float64)
    for feature, weight in _features(text).items():
        position, sign = _slot(family, feature, size)
        vector[position] += sign * weight
    if dimensions is not None:
        vector = vector[:dimensions]
    norm = np.linalg.norm(vector)
    if norm == 0:  # every feature fell past the shortened length: one fixed direction, still unit length
        vector[0], norm = 1.0, 1.0
    return (vector / norm).astype("<f4")


def _inputs(raw: object) -> list[str | list[int]]:
    """The inputs of a request, each a text or a list of token ids; '$.input' is invalid otherwise."""
    if isinstance(raw, str):
        items: list[object] = [raw]
    elif isinstance(raw, list) and raw and all(isinstance(t, int) and not isinstance(t, bool) for t in raw):
        items = [raw]
    elif isinstance(raw, list) and raw:
        items = list(raw)
    else:
        raise bad_request(_INVALID_INPUT)
    if len(items) > MAX_INPUTS:
        raise bad_request(_INVALID_INPUT)
    for item in items:
        text_ok = isinstance(item, str) and item != ""
        tokens_ok = (isinstance(item, list) and item
                     and all(isinstance(t, int) and not isinstance(t, bool) for t in item))
        if not (text_ok or tokens_ok):
            raise bad_request(_INVALID_INPUT)
    return items  # type: ignore[return-value]


def _dimensions(body: dict, model: Model) -> int | None:
    value = body.get("dimensions")
    if value is None:
        return None
    native = DIMENSIONS[model.family]
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= native:
        raise bad_request(f"Invalid 'dimensions': {value!r}. Expected an integer between 1 and {native} for "
                          f"{model.id}.", param="dimensions", code="invalid_value")
    return value


class Embeddings:
    def __init__(self, catalog: ModelCatalog, limiter: RateLimiter) -> None:
        self.catalog = catalog
        self.limiter = limiter

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/v1/embeddings", self.create)]

    async def create(self, request: web.Request) -> web.Response:
        body = await json_body(request)
        record: RequestRecord = request[RECORD_KEY]
        name = required_str(body, "model")
        record.model = name
        model = self.catalog.get(name)
        if model.kind != "embedding":
            raise APIError(403, "You are not allowed to generate embeddings from this model")
        encoding_format = body.get("encoding_format", "float")
        if encoding_format not in ("float", "base64"):
            raise bad_request(f"Invalid value: {encoding_format!r}. Supported values are: 'float' and 'base64'.",
                              param="encoding_format", code="invalid_value")
        dimensions = _dimensions(body, model)
        texts, tokens = self._read(_inputs(body.get("input")), name)
        total = sum(tokens)
        if total > MAX_REQUEST_TOKENS:
            raise APIError(400, f"Requested {total} tokens, max {MAX_REQUEST_TOKENS} tokens per request",
                           type="max_tokens_per_request", code="max_tokens_per_request")
        headers = self.limiter.charge(name, total)
        data = []
        for index, text in enumerate(texts):
            vector = embed_text(model.family, text, dimensions)
            value: object = (base64.b64encode(vector.tobytes()).decode("ascii") if encoding_format == "base64"
                             else vector.tolist())
            data.append({"object": "embedding", "index": index, "embedding": value})
        record.usage = {"prompt_tokens": total, "completion_tokens": 0, "total_tokens": total}
        return web.json_response({"object": "list", "data": data, "model": model.snapshot,
                                  "usage": {"prompt_tokens": total, "total_tokens": total}}, headers=headers)

    @staticmethod
    def _read(inputs: Sequence[str | list[int]], model: str) -> tuple[list[str], list[int]]:
        """Each input as text, with its token count; a token id the encoding lacks or an input over the limit is
        refused."""
        encoding = encoding_for_model(model)
        texts, counts = [], []
        for index, item in enumerate(inputs):
            if isinstance(item, str):
                text, count = item, len(encoding.encode_ordinary(item))
            else:
                try:
                    text = encoding.decode(item)
                except (KeyError, ValueError):  # an id the encoding does not have
                    raise bad_request(_INVALID_INPUT) from None
                count = len(item)
            if count > MAX_INPUT_TOKENS:
                raise bad_request(f"Invalid 'input[{index}]': maximum input length is {MAX_INPUT_TOKENS} tokens.",
                                  param=f"input[{index}]")
            texts.append(text)
            counts.append(count)
        return texts, counts
