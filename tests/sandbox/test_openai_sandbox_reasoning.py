"""The sandbox's reasoning stand-ins (gpt-6.x, gpt-5): billed thinking, OpenAI's refusals, and the token budget."""

from __future__ import annotations

import json

import openai
import pytest

from tests.sandbox.openai_sandbox_support import classification_format, client

LABELS = ["Billing", "Network", "Access"]
TICKET = [{"role": "system", "content": "Sort IT tickets."},
          {"role": "user", "content": "I was charged twice on my last invoice; please refund the billing error."}]


async def ask(sdk, model: str = "gpt-6.2-sol", **options):
    return await sdk.chat.completions.create(model=model, messages=TICKET,
                                             response_format=classification_format(LABELS), **options)


async def test_reasoning_is_billed_reported_and_grows_with_the_effort_without_changing_the_answer(openai_sandbox):
    async with client(openai_sandbox) as sdk:
        answers = {effort: await ask(sdk, reasoning_effort=effort, max_completion_tokens=50_000)
                   for effort in ("low", "medium", "high", "xhigh", "max")}
        default = await ask(sdk)
        again = await ask(sdk, reasoning_effort="low", max_completion_tokens=50_000)
    reasoning = [a.usage.completion_tokens_details.reasoning_tokens for a in answers.values()]
    assert 0 < reasoning[0] < reasoning[1] < reasoning[2] < reasoning[3] < reasoning[4]
    for answer in answers.values():
        assert json.loads(answer.choices[0].message.content) == {"label": "Billing"}
        visible = answer.usage.completion_tokens - answer.usage.completion_tokens_details.reasoning_tokens
        assert visible == 5 and answer.choices[0].finish_reason == "stop"  # {"label":"Billing"}
    assert default.usage.completion_tokens_details.reasoning_tokens == reasoning[1]  # medium, the default
    assert again.usage.completion_tokens == answers["low"].usage.completion_tokens  # deterministic


async def test_a_model_set_to_reason_long_is_cut_off_at_max_completion_tokens_and_still_billed(make_openai_sandbox):
    sandbox = await make_openai_sandbox(reasoning_scale={"gpt-6.2-sol": 100})
    async with client(sandbox) as sdk:
        answer = await ask(sdk, reasoning_effort="low", max_completion_tokens=300)
        partial = await ask(sdk, "gpt-6.1-terra", reasoning_effort="none", max_completion_tokens=3)
    assert answer.choices[0].finish_reason == "length" and answer.choices[0].message.content == ""
    assert answer.usage.completion_tokens == answer.usage.completion_tokens_details.reasoning_tokens == 300
    assert sandbox.requests[-2].usage["completion_tokens"] == 300 and sandbox.requests[-2].paid
    assert partial.choices[0].finish_reason == "length" and partial.usage.completion_tokens == 3
    assert partial.usage.completion_tokens_details.reasoning_tokens == 0  # effort none: no thinking


@pytest.mark.parametrize(("model", "options", "param", "code", "message"), [
    ("gpt-6.2-sol", {"reasoning_effort": "none"}, "reasoning_effort", "unsupported_value",
     "Unsupported value: 'reasoning_effort' does not support 'none' with this model. Supported values are: 'low', "
     "'medium', 'high', 'xhigh', and 'max'."),
    ("gpt-6-luna", {"reasoning_effort": "minimal"}, "reasoning_effort", "unsupported_value",
     "Supported values are: 'none', 'low', 'medium', 'high', 'xhigh', and 'max'."),
    ("gpt-6.2-sol", {"temperature": 0}, "temperature", "unsupported_parameter",
     "Unsupported parameter: 'temperature' is not supported with this model."),
    ("gpt-6.1-terra", {"reasoning_effort": "low", "temperature": 0.2}, "temperature", "unsupported_parameter",
     "Unsupported parameter: 'temperature' is not supported with this model."),
    ("gpt-5", {"temperature": 0}, "temperature", "unsupported_value",
     "Unsupported value: 'temperature' does not support 0 with this model. Only the default (1) value is supported."),
    ("gpt-6.1-sol", {"max_tokens": 50}, "max_tokens", "unsupported_parameter",
     "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead."),
    ("gpt-4o", {"reasoning_effort": "low"}, "reasoning_effort", "unsupported_parameter",
     "Unsupported parameter: 'reasoning_effort' is not supported with this model."),
])
async def test_what_openai_refuses_is_refused_with_its_error_body(openai_sandbox, model, options, param, code,
                                                                   message):
    async with client(openai_sandbox) as sdk:
        with pytest.raises(openai.BadRequestError) as refused:
            await ask(sdk, model, **options)
    assert refused.value.body["type"] == "invalid_request_error"
    assert (refused.value.param, refused.value.code) == (param, code) and message in refused.value.message
    assert not openai_sandbox.requests.paid()


async def test_temperature_is_taken_with_effort_none_and_by_models_that_do_not_reason(openai_sandbox):
    async with client(openai_sandbox) as sdk:
        terra = await ask(sdk, "gpt-6.1-terra", reasoning_effort="none", temperature=0)
        gpt5 = await ask(sdk, "gpt-5", temperature=1, reasoning_effort="minimal")
        gpt4o = await ask(sdk, "gpt-4o", temperature=0)
    assert terra.usage.completion_tokens_details.reasoning_tokens == 0
    assert gpt5.usage.completion_tokens_details.reasoning_tokens > 0
    assert gpt4o.usage.completion_tokens_details.reasoning_tokens == 0


async def test_an_embeddings_model_is_listed_but_is_not_a_chat_model(openai_sandbox):
    async with client(openai_sandbox) as sdk:
        listed = await sdk.models.retrieve("text-embedding-3-small")
        with pytest.raises(openai.NotFoundError, match="This is not a chat model"):
            await ask(sdk, "text-embedding-3-small")
    assert listed.id == "text-embedding-3-small"
