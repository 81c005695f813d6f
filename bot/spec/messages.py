"""The exact chat messages a run sends: its system prompt, the rendered row and, for training, the answer."""

from __future__ import annotations

from bot.spec.settings import RunSpec


def build_messages(spec: RunSpec, user_prompt: str) -> list[dict[str, str]]:
    """The exact messages of one request: the run's system prompt (if any), then the rendered row."""
    messages = [{"role": "system", "content": spec.system}] if spec.system else []
    messages.append({"role": "user", "content": user_prompt})
    return messages


def training_example(spec: RunSpec, user_prompt: str, answer: str) -> list[dict[str, str]]:
    """One fine-tuning example: the request's messages followed by the answer as the model writes it (a label as
    answer_json, free text or a JSON object as it is: bot/prompts/answers.py)."""
    return [*build_messages(spec, user_prompt), {"role": "assistant", "content": answer}]
