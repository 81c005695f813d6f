"""How many texts and tokens one embeddings request may carry (OpenAI's limits), and texts grouped to fit them."""

from __future__ import annotations

from collections.abc import Sequence

MAX_INPUTS = 2048
MAX_INPUT_TOKENS = 8192
MAX_REQUEST_TOKENS = 300_000


def plan_batches(tokens: Sequence[int], *, max_inputs: int = MAX_INPUTS,
                 max_request_tokens: int = MAX_REQUEST_TOKENS) -> list[list[int]]:
    """Positions of the texts grouped into requests within the per-request limits, in order."""
    batches: list[list[int]] = [[]]
    total = 0
    for position, count in enumerate(tokens):
        if batches[-1] and (len(batches[-1]) >= max_inputs or total + count > max_request_tokens):
            batches.append([])
            total = 0
        batches[-1].append(position)
        total += count
    return [batch for batch in batches if batch]
