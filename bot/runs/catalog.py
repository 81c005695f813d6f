"""The models a team can pick, for `/distill models`: teachers, each trainer's students, and those in use.

A teacher answers at OPENAI_BASE_URL, so the teachers are the price table's chat models that endpoint lists
(`GET /models`; all of the table's when it cannot be asked). The students are what each trainer says it can
train (`Trainer.students`, from the price table: no network call). Each model comes with its price per 1M
tokens, the reasoning efforts it takes, its training price, and its shutdown date: the provider's where it
reports one, else the price table's, past ones marked against the bot's clock.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal

import openai

from bot.core.errors import USER_ERRORS
from bot.core.provider import ChatProvider, provider_date
from bot.prices.table import PriceTable
from bot.prompts.encodings import base_model_name
from bot.trainers.base import Trainer


@dataclass(frozen=True)
class ModelInfo:
    """A model a team can pick (or one in use here), with what `/distill models` says about it."""

    model: str
    picks: tuple[str, ...]  # "teacher", "student (openai)", "student (together)"; empty: only in use here
    uses: tuple[str, ...]  # "default teacher", "run wine: student", ...
    listed: bool | None  # OPENAI_BASE_URL's models endpoint lists it; None: served elsewhere, not asked
    shutdown_date: dt.date | None  # the provider's, else the price table's
    shut_down: bool  # that date is past (today, the bot's clock)
    input_usd_per_1m: Decimal | None = None
    output_usd_per_1m: Decimal | None = None
    training_usd_per_1m: Decimal | None = None  # None: cannot be fine-tuned
    efforts: tuple[str, ...] = ()  # reasoning efforts it takes; empty: does not reason


def unlisted(base_url: str, exc: openai.APIStatusError | openai.APIConnectionError) -> str:
    """Why the provider did not list its models, and what to change."""
    if isinstance(exc, openai.APIConnectionError):
        return (f"Could not reach {base_url} ({type(exc).__name__}: {exc}). Check OPENAI_BASE_URL and that the "
                "provider is up.")
    said = f"HTTP {exc.status_code}: {exc.message}"
    if exc.status_code in (401, 403):
        return f"{base_url} refused the key ({said}). Set a valid key for it in OPENAI_API_KEY."
    return f"{base_url} did not list its models ({said}). Check OPENAI_BASE_URL, or try again later."


async def list_models(provider: ChatProvider, prices: PriceTable, trainers: Iterable[str],
                      trainer: Callable[[str], Trainer], uses: dict[str, list[str]],
                      today: dt.date) -> tuple[list[ModelInfo], list[str]]:
    """The teachers and students a run can pick, then the other models in `uses` (model -> what uses it), with
    notes on what could not be asked."""
    notes: list[str] = []
    try:
        listed = {m.id: m async for m in provider.client.models.list()}
    except (openai.APIStatusError, openai.APIConnectionError) as exc:
        listed = None
        notes.append(f"{unlisted(provider.base_url, exc)} The teachers below are the price table's, not checked "
                     "against the provider.")
    picks: dict[str, list[str]] = {}
    for name, price in prices.prices.items():
        if (price.facts.kind == "chat" and not name.startswith("ft:") and price.facts.provider != "together"
                and (listed is None or name in listed)):
            picks.setdefault(name, []).append("teacher")
    for name in trainers:
        try:
            students = trainer(name).students(prices)
        except USER_ERRORS as exc:
            notes.append(f"trainer={name}: {exc}")
            continue
        if not students:
            notes.append(f"trainer={name} offers no student today.")
        for student in students:
            picks.setdefault(student.model, []).append(f"student ({name})")
    found = []
    for name in [*picks, *(n for n in uses if n and n not in picks)]:
        price = prices.prices.get(f"ft:{base_model_name(name)}" if name.startswith("ft:") else name)
        remote = listed.get(name) if listed else None
        served_here = price is None or price.facts.provider != "together"
        shutdown = provider_date(getattr(remote, "shutdown_date", None)) or (
            price.facts.shutdown_date if price else None)
        found.append(ModelInfo(
            name, tuple(picks.get(name, ())), tuple(uses.get(name, ())),
            (name in listed) if listed is not None and served_here else None, shutdown,
            shutdown is not None and shutdown <= today,
            price.input_usd_per_1m if price else None, price.output_usd_per_1m if price else None,
            price.training_usd_per_1m if price and not name.startswith("ft:") else None,
            price.facts.reasoning_efforts if price else ()))
    return found, notes
