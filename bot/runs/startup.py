"""Readying a long-running bot process before it takes its first request.

Two things would otherwise stall the event loop later, in the middle of a team's work (bench/responsiveness.py
found both): building a tiktoken encoding holds the GIL for about 100 ms, the first time a quote needs it; and
every full garbage collection walks every object the process holds, including the few hundred thousand that
importing slack_bolt, openai and pandas made. So the encodings of the default models are built now, and what
exists after start-up is collected once and frozen (gc.freeze), out of every later collection's way.
"""

from __future__ import annotations

import gc

from bot.core.config import Settings
from bot.prompts.encodings import encoding_for_model


def ready_for_serving(settings: Settings) -> None:
    for model in (settings.teacher_model, settings.student_model):
        encoding_for_model(model)
    gc.collect()
    gc.freeze()
