"""A request must fit its model's context window: its prompt plus the most its answer may take (max_completion_tokens,
hidden reasoning included), and the prompt alone within the model's max input where the provider sets one.

The windows are the price table's facts (bot/prices/prices.json: context_window_tokens, max_input_tokens); a model
without them is not checked here, and its provider refuses a request that does not fit. Two checks, both in
bot/costs/quotes.py and before any row is sent or paid for: the template and system prompt alone when they are set (no
row rendered yet: a 1 MB template is refused at once, before the dataset's rows are rendered with it), and every row's
exact prompt when a stage is quoted.
"""

from __future__ import annotations

from bot.prices.table import ModelFacts


def too_long(model: str, facts: ModelFacts, prompt_tokens: int, max_completion_tokens: int, what: str) -> str | None:
    """Why `what` (a prompt of `prompt_tokens`) and an answer of up to `max_completion_tokens` do not fit `model`,
    or None when they do or the table gives no window."""
    window, max_input = facts.context_window_tokens, facts.max_input_tokens
    if max_input is not None and prompt_tokens > max_input:
        return (f"{what}: {prompt_tokens:,} tokens, over the {max_input:,} tokens {model} takes as input "
                f"(its context window is {window or max_input:,}).")
    if window is not None and prompt_tokens + max_completion_tokens > window:
        return (f"{what}: {prompt_tokens:,} tokens, and the answer may take {max_completion_tokens:,} more "
                f"(max_completion_tokens): {prompt_tokens + max_completion_tokens:,} in all, over {model}'s context "
                f"window of {window:,} tokens.")
    return None
