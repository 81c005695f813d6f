"""Answers to chat completion requests: the request checks and the answer, shared by live calls and batches.

Which classifier answers depends on the model (see sandbox/openai/__init__.py): the lexical teacher, the
lexical student with half its recall, or the naive Bayes of a fine-tuned model. The classifier reads the
last user message; solved examples before it (user turns answered by the assistant) add a nearest-neighbour
vote to the lexical classifiers' scores (few_shot.py). With a json_schema response_format it fills each enum of the
schema and reads each other field of a plain type from the prompt (sandbox/openai/extraction.py); without one it picks
from a list the prompt gives ("...: A, B, C."), solves a math word problem (sandbox/openai/word_problems.py), or
writes from the prompt (sandbox/openai/writing.py). A request that asks it to judge answers (MT-Bench's answer markers
in the prompt) is judged by similarity to the reference (sandbox/openai/judge.py), in text (pairwise) or in the
schema's `result`.

Reasoning models (gpt-6.x, gpt-5) also "think" first: they bill reasoning tokens, counted in completion_tokens
and reported in usage.completion_tokens_details.reasoning_tokens. How many is a deterministic function of the
prompt and the effort (`reasoning_tokens`): the prompt's tokens plus a little, times a factor that grows with
the effort (REASONING_PER_EFFORT), times a seeded share of the prompt (0.5-1.5), times the model's
`reasoning_scale` (a knob: tests make a model reason long). The thinking does not change the answer: the label
still comes from the prompt. They refuse what OpenAI refuses: an effort they do not take, `temperature` (and
`top_p`) unless the effort is `none` (gpt-5: unless it is 1), and `max_tokens`. An answer that does not fit in
max_completion_tokens stops with finish_reason "length": when the reasoning took it all, content is "" and
completion_tokens the whole budget (what OpenAI returns, notes in bot/prices/reasoning.py).

A model can also be made worse on purpose (`degraded`, a fault knob: a model id or family -> a share from 0 to 1):
that share of its prompts, picked by a seeded hash of the prompt, gets the choice after the one its classifier
picked, the way a model that drifted answers some inputs differently. A watch of the model's traffic then sees
its agreement with the teacher fall.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bot.prompts.encodings import encoding_for_model
from sandbox.openai import judge
from sandbox.openai.clock import JobClock
from sandbox.openai.errors import APIError, bad_request
from sandbox.openai.extraction import FieldReader
from sandbox.openai.few_shot import VOTE_WEIGHT, example_votes, solved_examples
from sandbox.openai.ids import new_id
from sandbox.openai.learned import MAX_LABELS
from sandbox.openai.lexical import LexicalClassifier
from sandbox.openai.models import Model, ModelCatalog
from sandbox.openai.params import metadata, optional_int, required_str
from sandbox.openai.schema import fill, parse_json_schema
from sandbox.openai.text import seeded_index
from sandbox.openai.usage import content_text, count_tokens, last_user_text, prompt_tokens
from sandbox.openai.word_problems import TEACHER_LEXICON, Lexicon, is_word_problem, solve
from sandbox.openai.writing import first_sentence, summary

ROLES = ("system", "developer", "user", "assistant", "tool")
STUDENT_RECALL = 0.5
# OpenAI's ReasoningEffort enum (openapi.yaml, ReasoningEffort) and how hard the stand-ins think at each.
EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh", "max")
REASONING_PER_EFFORT = {"none": 0.0, "minimal": 0.5, "low": 1.0, "medium": 3.0, "high": 8.0, "xhigh": 16.0,
                        "max": 32.0}
REASONING_BASE_TOKENS = 48
_SAMPLING = ("temperature", "top_p")
_LISTED = re.compile(r":\s*([^:\n]+)")


@dataclass(frozen=True)
class ChatAnswer:
    completion: dict
    request_model: str
    messages_hash: str
    last_user_text: str
    metadata: dict[str, str]
    store: bool
    max_tokens: int | None

    @property
    def usage(self) -> dict:
        return self.completion["usage"]


def messages_hash(messages: Sequence[dict]) -> str:
    return hashlib.sha256(json.dumps(messages, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def listed_choices(prompt: str) -> list[str]:
    """The last list of at least three short comma-separated items after a colon, if the prompt has one."""
    found: list[str] = []
    for match in _LISTED.finditer(prompt):
        items = [i.strip(" .'\"") for i in re.split(r",|\bor\b", match.group(1).split(". ")[0])]
        items = [i for i in items if i]
        if len(items) >= 3 and all(len(i) <= 40 and len(i.split()) <= 6 for i in items):
            found = items
    return found


def _check_messages(messages: Any) -> list[dict]:
    if messages is None:
        raise bad_request("Missing required parameter: 'messages'.", param="messages",
                          code="missing_required_parameter")
    if not isinstance(messages, list) or not messages:
        raise bad_request("Invalid 'messages': empty array. Expected an array with minimum length 1, but got an "
                          "empty array instead.", param="messages", code="empty_array")
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise bad_request(f"Invalid type for 'messages[{i}]': expected an object.", param=f"messages[{i}]",
                              code="invalid_type")
        role = message.get("role")
        if role not in ROLES:
            raise bad_request(f"Invalid value: {role!r}. Supported values are: " + ", ".join(map(repr, ROLES)) + ".",
                              param=f"messages[{i}].role", code="invalid_value")
        content = message.get("content")
        if role != "assistant" and not isinstance(content, str | list):
            raise bad_request(f"Missing required parameter: 'messages[{i}].content'.",
                              param=f"messages[{i}].content", code="missing_required_parameter")
    return messages


def _listed(values: Sequence[str]) -> str:
    """'a', 'b', and 'c' (OpenAI's way of listing supported values)."""
    quoted = [f"'{v}'" for v in values]
    return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])}{',' if len(quoted) > 2 else ''} and " \
        f"{quoted[-1]}"


def _effort(model: Model, body: dict) -> str | None:
    """The effort the model reasons at, or OpenAI's 400 for a parameter or value it does not take."""
    requested = body.get("reasoning_effort")
    if model.reasoning is None:
        if requested is not None:
            raise bad_request("Unsupported parameter: 'reasoning_effort' is not supported with this model.",
                              param="reasoning_effort", code="unsupported_parameter")
        return None
    if body.get("max_tokens") is not None:
        raise bad_request("Unsupported parameter: 'max_tokens' is not supported with this model. Use "
                          "'max_completion_tokens' instead.", param="max_tokens", code="unsupported_parameter")
    if requested is None:
        effort = model.reasoning.default
    elif requested not in EFFORTS:
        raise bad_request(f"Invalid value: {requested!r}. Supported values are: {_listed(EFFORTS)}.",
                          param="reasoning_effort", code="invalid_value")
    elif requested not in model.reasoning.efforts:
        raise bad_request(f"Unsupported value: 'reasoning_effort' does not support '{requested}' with this model. "
                          f"Supported values are: {_listed(model.reasoning.efforts)}.", param="reasoning_effort",
                          code="unsupported_value")
    else:
        effort = requested
    for name in _SAMPLING:
        value = body.get(name)
        if value is None or (effort == "none" and model.reasoning.temperature == "with_effort_none"):
            continue
        if model.reasoning.temperature == "default_only":
            if value != 1:
                raise bad_request(f"Unsupported value: '{name}' does not support {value} with this model. Only the "
                                  "default (1) value is supported.", param=name, code="unsupported_value")
            continue
        raise bad_request(f"Unsupported parameter: '{name}' is not supported with this model.", param=name,
                          code="unsupported_parameter")
    return effort


def _judgment(schema: dict, prompt: str) -> dict:
    """A score_model or label_model judgment: the judge's reasoning step and its score or label."""
    value, basis = judge.judged_score(prompt)
    options = schema["properties"]["result"].get("enum")
    result = judge.label_for(options, value) if options else value
    return {"steps": [{"description": f"Compared {basis}.", "conclusion": f"It scores {value:.2f}."}],
            "result": result}


class ChatEngine:
    def __init__(self, catalog: ModelCatalog, clock: JobClock, seed: int = 0,
                 reasoning_scale: dict[str, float] | None = None) -> None:
        self.catalog = catalog
        self.clock = clock
        self.seed = seed
        self.reasoning_scale = dict(reasoning_scale or {})  # model id or family -> factor (1 when absent)
        self.degraded: dict[str, float] = {}  # model id or family -> share of prompts answered wrongly
        self._teacher = LexicalClassifier(seed)
        self._student = LexicalClassifier(seed, recall=STUDENT_RECALL)

    def reasoning_tokens(self, model: Model, prompt: str, prompt_tokens: int, effort: str | None) -> int:
        """How long the model thinks about `prompt` at `effort` (see the module docstring)."""
        if effort is None or effort == "none":
            return 0
        share = 0.5 + seeded_index(self.seed, f"reasoning:{model.family}:{prompt}", 1000) / 1000
        scale = self.reasoning_scale.get(model.id, self.reasoning_scale.get(model.family, 1.0))
        return int((REASONING_BASE_TOKENS + prompt_tokens) * REASONING_PER_EFFORT[effort] * share * scale)

    def _classify(self, model: Model, prompt: str, choices: Sequence[str],
                  examples: Sequence[tuple[str, str]] = ()) -> str:
        if model.finetuned is not None:
            label = model.finetuned.classifier.classify(prompt, choices)
        else:
            classifier = self._student if model.kind == "student" else self._teacher
            scores = classifier.scores(prompt, choices)
            if examples:
                votes = example_votes(prompt, examples, choices, classifier.visible)
                scores = [score + VOTE_WEIGHT * vote for score, vote in zip(scores, votes, strict=True)]
            label = classifier.pick(prompt, choices, scores)
        return self._degrade(model, prompt, label, choices)

    def _degrade(self, model: Model, prompt: str, label: str, choices: Sequence[str]) -> str:
        """The label, or for the degraded share of a degraded model's prompts the next choice (see above)."""
        share = self.degraded.get(model.id, self.degraded.get(model.family, 0.0))
        if not share or len(choices) < 2 or label not in choices:
            return label
        if seeded_index(self.seed, f"degrade:{model.id}:{prompt}", 1000) >= share * 1000:
            return label
        return choices[(list(choices).index(label) + 1) % len(choices)]

    def _lexicon(self, model: Model) -> Lexicon:
        """The cue words the model solves word problems with (sandbox/openai/word_problems.py)."""
        if model.kind == "teacher":
            return TEACHER_LEXICON
        student = TEACHER_LEXICON.seen_by(self.seed, STUDENT_RECALL)
        return student.merged(model.finetuned.classifier.lexicon) if model.finetuned is not None else student

    def _reader(self, model: Model) -> FieldReader:
        """How the model reads an extraction's fields (sandbox/openai/extraction.py)."""
        if model.kind == "teacher":
            return FieldReader(seed=self.seed)
        learned = model.finetuned.classifier.keys if model.finetuned is not None else {}
        return FieldReader(seed=self.seed, recall=STUDENT_RECALL, learned=learned)

    def _write(self, model: Model, prompt: str) -> str:
        """Free text that is not a word problem (sandbox/openai/writing.py)."""
        if model.finetuned is not None:
            learned = model.finetuned.classifier
            if len(learned.labels) <= MAX_LABELS:  # trained on labels: it answers with one
                return learned.classify(prompt)
            return learned.memory.recall(prompt) or first_sentence(prompt)
        return summary(prompt) if model.kind == "teacher" else first_sentence(prompt)

    def _text(self, model: Model, prompt: str, examples: Sequence[tuple[str, str]] = ()) -> str:
        if judge.is_judging(prompt):
            return judge.pairwise(prompt)
        choices = listed_choices(prompt)
        if choices:
            return self._classify(model, prompt, choices, examples)
        if is_word_problem(prompt):
            return solve(prompt, self._lexicon(model))
        return self._write(model, prompt)

    def _content(self, model: Model, body: dict, messages: list[dict]) -> str:
        prompt = last_user_text(messages)
        examples = solved_examples(messages)
        response_format = body.get("response_format") or {"type": "text"}
        kind = response_format.get("type") if isinstance(response_format, dict) else None
        if kind == "json_schema":
            schema = parse_json_schema(response_format)
            if judge.is_judging(prompt) and "result" in schema.get("properties", {}):
                return json.dumps(_judgment(schema, prompt), separators=(",", ":"), ensure_ascii=False)

            def pick(choices: Sequence[Any]) -> Any:
                by_text = {str(c): c for c in choices}
                return by_text[self._classify(model, prompt, list(by_text), examples)]

            reader = self._reader(model)
            value = fill(schema, pick, lambda: self._text(model, prompt, examples),
                         read=lambda name, kind: reader.read(prompt, name, kind))
            return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
        if kind == "json_object":
            if not any("json" in content_text(m.get("content")).lower() for m in messages):
                raise bad_request("'messages' must contain the word 'json' in some form, to use 'response_format' "
                                  "of type 'json_object'.", param="messages")
            return json.dumps({"answer": self._text(model, prompt, examples)}, separators=(",", ":"),
                              ensure_ascii=False)
        if kind == "text":
            return self._text(model, prompt, examples)
        raise bad_request(f"Invalid value: {kind!r}. Supported values are: 'text', 'json_object' and 'json_schema'.",
                          param="response_format.type", code="invalid_value")

    def answer(self, body: dict) -> ChatAnswer:
        """The completion OpenAI would return for `body`, or an APIError for a request it would refuse."""
        request_model = required_str(body, "model")
        messages = _check_messages(body.get("messages"))
        if body.get("stream"):
            raise bad_request("The sandbox does not stream answers; call without stream=True.", param="stream")
        n = optional_int(body, "n", 1, 128) or 1
        max_tokens = optional_int(body, "max_completion_tokens") or optional_int(body, "max_tokens")
        tags = metadata(body)
        model = self.catalog.get(request_model)
        if model.kind == "embedding":
            raise APIError(404, "This is not a chat model and thus not supported in the v1/chat/completions "
                           "endpoint. Did you mean to use v1/completions?", param="model", code=None)
        effort = _effort(model, body)
        content = self._content(model, body, messages)
        prompt = prompt_tokens(request_model, messages)
        reasoning = self.reasoning_tokens(model, last_user_text(messages), prompt, effort)
        finish_reason = "stop"
        answer_tokens = count_tokens(request_model, content)
        if max_tokens is not None and reasoning + answer_tokens > max_tokens:
            reasoning = min(reasoning, max_tokens)
            encoding = encoding_for_model(request_model)
            content = encoding.decode(encoding.encode_ordinary(content)[:max_tokens - reasoning])
            answer_tokens, finish_reason = max_tokens - reasoning, "length"
        completion_tokens = reasoning + answer_tokens
        choice = {"role": "assistant", "content": content, "refusal": None, "annotations": []}
        completion = {
            "id": new_id("chatcmpl-", 29),
            "object": "chat.completion",
            "created": int(self.clock.now()),
            "model": model.snapshot,
            "choices": [
                {"index": i, "message": dict(choice), "logprobs": None, "finish_reason": finish_reason}
                for i in range(n)
            ],
            "usage": {
                "prompt_tokens": prompt,
                "completion_tokens": completion_tokens * n,
                "total_tokens": prompt + completion_tokens * n,
                "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                "completion_tokens_details": {
                    "reasoning_tokens": reasoning * n,
                    "audio_tokens": 0,
                    "accepted_prediction_tokens": 0,
                    "rejected_prediction_tokens": 0,
                },
            },
            "service_tier": "default",
            "system_fingerprint": "fp_sandbox",
        }
        return ChatAnswer(completion, request_model, messages_hash(messages), last_user_text(messages), tags,
                          body.get("store") is True, max_tokens)
