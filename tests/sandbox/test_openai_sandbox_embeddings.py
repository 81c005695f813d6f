"""The sandbox's `POST /v1/embeddings` through the real openai SDK: OpenAI's shapes, limits and errors, and vectors
that put similar texts near each other."""

from __future__ import annotations

import base64

import numpy as np
import openai
import pytest

from bot.tokens import get_encoding
from tests.sandbox.openai_sandbox_support import client

SMALL = "text-embedding-3-small"
TICKETS = ["My invoice charged me twice, please refund the second payment",
           "Refund the double charge on this month's invoice",
           "The VPN does not connect when I work from home",
           "Cannot connect to the office VPN from home since Monday"]


def _matrix(response) -> np.ndarray:
    return np.array([item.embedding for item in sorted(response.data, key=lambda item: item.index)])


async def test_vectors_are_unit_length_deterministic_and_put_similar_texts_near(openai_sandbox):
    async with client(openai_sandbox) as sdk:
        first = _matrix(await sdk.embeddings.create(model=SMALL, input=TICKETS))
        again = _matrix(await sdk.embeddings.create(model=SMALL, input=TICKETS))
        large = _matrix(await sdk.embeddings.create(model="text-embedding-3-large", input=TICKETS))
    assert first.shape == (4, 1536) and large.shape == (4, 3072)
    assert np.allclose(np.linalg.norm(first, axis=1), 1, atol=1e-5)
    assert np.array_equal(first, again)
    cosine = first @ first.T
    assert cosine[0, 1] > 0.3 and cosine[2, 3] > 0.3  # the two billing tickets, the two VPN tickets
    assert max(abs(cosine[0, 2]), abs(cosine[0, 3]), abs(cosine[1, 2]), abs(cosine[1, 3])) < 0.1
    large_cosine = large @ large.T
    assert large_cosine[0, 1] > 0.3 and abs(large_cosine[0, 2]) < 0.1  # another model, the same sense


async def test_the_reply_has_openais_shape_and_counts_tokens_with_the_models_encoding(openai_sandbox):
    async with client(openai_sandbox) as sdk:
        raw = await sdk.embeddings.with_raw_response.create(model=SMALL, input=TICKETS[:2], encoding_format="float")
    body = raw.http_response.json()
    assert body["object"] == "list" and body["model"] == SMALL
    assert [(item["object"], item["index"]) for item in body["data"]] == [("embedding", 0), ("embedding", 1)]
    assert all(isinstance(x, float) for x in body["data"][0]["embedding"])
    cl100k = get_encoding("cl100k_base")  # text-embedding-3's tokenizer
    tokens = sum(len(cl100k.encode(text)) for text in TICKETS[:2])
    assert body["usage"] == {"prompt_tokens": tokens, "total_tokens": tokens}
    record = openai_sandbox.requests[-1]
    assert record.path == "/v1/embeddings" and record.paid and record.usage["prompt_tokens"] == tokens


async def test_base64_is_the_same_float32_vector_and_the_sdk_decodes_it_by_default(openai_sandbox):
    async with client(openai_sandbox) as sdk:
        floats = await sdk.embeddings.create(model=SMALL, input=TICKETS[0], encoding_format="float")
        raw = await sdk.embeddings.with_raw_response.create(model=SMALL, input=TICKETS[0], encoding_format="base64")
        default = await sdk.embeddings.create(model=SMALL, input=TICKETS[0])
    encoded = raw.http_response.json()["data"][0]["embedding"]
    decoded = np.frombuffer(base64.b64decode(encoded), dtype="<f4")
    assert np.array_equal(decoded, np.array(floats.data[0].embedding, dtype=np.float32))
    assert openai_sandbox.requests[-1].path == "/v1/embeddings"
    assert np.array_equal(np.array(default.data[0].embedding, dtype=np.float32), decoded)


async def test_dimensions_keep_the_first_numbers_normalised_again(openai_sandbox):
    async with client(openai_sandbox) as sdk:
        full = _matrix(await sdk.embeddings.create(model=SMALL, input=TICKETS[0]))[0]
        short = _matrix(await sdk.embeddings.create(model=SMALL, input=TICKETS[0], dimensions=256))[0]
        for wrong in (0, 1537):
            with pytest.raises(openai.BadRequestError, match="'dimensions'"):
                await sdk.embeddings.create(model=SMALL, input=TICKETS[0], dimensions=wrong)
    assert short.shape == (256,) and np.isclose(np.linalg.norm(short), 1, atol=1e-5)
    assert np.allclose(short, full[:256] / np.linalg.norm(full[:256]), atol=1e-6)


async def test_token_arrays_embed_like_their_text_and_count_as_many_tokens(openai_sandbox):
    tokens = get_encoding("cl100k_base").encode(TICKETS[2])
    async with client(openai_sandbox) as sdk:
        text = await sdk.embeddings.create(model=SMALL, input=TICKETS[2])
        one = await sdk.embeddings.create(model=SMALL, input=tokens)
        many = await sdk.embeddings.create(model=SMALL, input=[tokens, tokens])
        with pytest.raises(openai.BadRequestError, match=r"'\$\.input' is invalid"):
            await sdk.embeddings.create(model=SMALL, input=[[10**7]])  # no such token
    assert _matrix(one).tolist() == _matrix(text).tolist() == _matrix(many)[:1].tolist()
    assert one.usage.prompt_tokens == len(tokens) and many.usage.total_tokens == 2 * len(tokens)


@pytest.mark.parametrize(("given", "status", "message"), [
    ("", 400, "'$.input' is invalid. Please check the API reference"),
    (["fine", ""], 400, "'$.input' is invalid"),
    ([], 400, "'$.input' is invalid"),
    (["ticket"] * 2049, 400, "'$.input' is invalid"),
    (["ticket", "hello" + " hello" * 8192], 400, "Invalid 'input[1]': maximum input length is 8192 tokens."),
    (["hello" + " hello" * 7999] * 38, 400, "Requested 304000 tokens, max 300000 tokens per request"),
])
async def test_openais_limits_are_refused_in_its_words(openai_sandbox, given, status, message):
    async with client(openai_sandbox) as sdk:
        with pytest.raises(openai.APIStatusError) as refused:
            await sdk.embeddings.create(model=SMALL, input=given)
    assert refused.value.status_code == status and message in refused.value.message
    assert not openai_sandbox.requests[-1].paid


async def test_2048_inputs_are_taken_and_over_the_token_limit_the_type_names_it(openai_sandbox):
    async with client(openai_sandbox) as sdk:
        most = await sdk.embeddings.create(model=SMALL, input=[f"ticket {i}" for i in range(2048)])
        with pytest.raises(openai.BadRequestError) as refused:
            await sdk.embeddings.create(model=SMALL, input=["hello" + " hello" * 7999] * 38)
    assert len(most.data) == 2048
    assert refused.value.body["type"] == refused.value.body["code"] == "max_tokens_per_request"


async def test_a_chat_model_or_an_unknown_one_is_refused(openai_sandbox):
    async with client(openai_sandbox) as sdk:
        with pytest.raises(openai.PermissionDeniedError, match="not allowed to generate embeddings from this model"):
            await sdk.embeddings.create(model="gpt-6-luna", input="hello")
        with pytest.raises(openai.NotFoundError, match="does not exist"):
            await sdk.embeddings.create(model="text-embedding-9", input="hello")
        with pytest.raises(openai.BadRequestError, match="Invalid value: 'int8'"):
            await sdk.embeddings.create(model=SMALL, input="hello", encoding_format="int8")


async def test_tokens_per_minute_limit_embeddings_too(make_openai_sandbox):
    sandbox = await make_openai_sandbox(tpm_limits={SMALL: 60})
    async with client(sandbox) as sdk:
        answered = await sdk.embeddings.with_raw_response.create(model=SMALL, input=TICKETS)
        with pytest.raises(openai.RateLimitError) as limited:
            await sdk.embeddings.create(model=SMALL, input=TICKETS)
    assert answered.headers["x-ratelimit-limit-tokens"] == "60"
    assert "tokens per min (TPM)" in limited.value.message and limited.value.response.headers["retry-after"]
