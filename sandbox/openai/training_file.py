"""Checks on a fine-tuning file, as OpenAI runs them before a job may start.

Rules from platform.openai.com/docs/guides/supervised-fine-tuning ("Preparing your dataset"): one JSON object
per line, each with a `messages` list of system/user/assistant turns ending with the assistant's answer, at
least 10 examples, and each example under the model's token limit. The first broken rule fails the job with
`error: {code: "invalid_training_file", message, param: "training_file"}`, naming the line and the fix.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from sandbox.openai.usage import content_text, last_user_text, message_tokens

MIN_EXAMPLES = 10
# gpt-4o-mini and gpt-4o take up to 65,536 tokens per training example (OpenAI's fine-tuning guide).
MAX_EXAMPLE_TOKENS = 65_536
TRAINING_ROLES = ("system", "user", "assistant")


class TrainingFileError(Exception):
    def __init__(self, message: str, param: str = "training_file") -> None:
        super().__init__(message)
        self.message = message
        self.param = param

    def as_json(self) -> dict:
        return {"code": "invalid_training_file", "message": self.message, "param": self.param}


@dataclass(frozen=True)
class Example:
    text: str  # the last user message: what the fine-tuned model will see
    label: str  # the assistant's answer, unwrapped from {"label": ...} when it is a one-field JSON object
    tokens: int


def answer_label(content: str) -> str:
    """`{"label":"Billing"}` -> 'Billing'; any other answer is its own label."""
    try:
        value = json.loads(content)
    except json.JSONDecodeError:
        return content.strip()
    if isinstance(value, dict) and len(value) == 1 and isinstance(next(iter(value.values())), str):
        return next(iter(value.values()))
    return content.strip()


def _example(line_no: int, line: str, model: str) -> Example:
    where = f"Line {line_no}"
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise TrainingFileError(f"{where} is not valid JSON ({exc.msg}). Write one JSON object per line.") from None
    if not isinstance(record, dict) or not isinstance(record.get("messages"), list) or not record["messages"]:
        raise TrainingFileError(f'{where}: expected an object with a non-empty "messages" list, like '
                                '{"messages": [{"role": "user", ...}, {"role": "assistant", ...}]}.')
    messages = record["messages"]
    for i, message in enumerate(messages, start=1):
        role = message.get("role") if isinstance(message, dict) else None
        if role not in TRAINING_ROLES:
            raise TrainingFileError(f"{where}, message {i}: unrecognized role {role!r}. Use one of "
                                    + ", ".join(TRAINING_ROLES) + ".")
        if not isinstance(message.get("content"), str | list):
            raise TrainingFileError(f'{where}, message {i}: missing "content".')
    if messages[-1]["role"] != "assistant":
        raise TrainingFileError(f"{where}: the last message must be the assistant's answer (it is from "
                                f"{messages[-1]['role']!r}). Add the expected answer as an assistant message.")
    tokens = message_tokens(model, messages)
    if tokens > MAX_EXAMPLE_TOKENS:
        raise TrainingFileError(f"{where}: the example has {tokens} tokens; the limit is {MAX_EXAMPLE_TOKENS}. "
                                "Shorten it or drop it.")
    return Example(last_user_text(messages), answer_label(content_text(messages[-1]["content"])), tokens)


def parse_training_file(content: bytes, model: str, min_examples: int = MIN_EXAMPLES,
                        param: str = "training_file") -> list[Example]:
    """The examples of a JSONL fine-tuning file, or TrainingFileError for the first broken rule."""
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError:
        raise TrainingFileError("The file is not UTF-8 text. Save it as UTF-8 JSONL.", param) from None
    try:
        examples = [_example(n, line, model) for n, line in enumerate(text.splitlines(), start=1) if line.strip()]
    except TrainingFileError as exc:
        raise TrainingFileError(exc.message, param) from None
    if len(examples) < min_examples:
        raise TrainingFileError(f"The file has {len(examples)} example(s), but a fine-tuning file needs at least "
                                f"{min_examples}. Add more examples.", param)
    return examples
