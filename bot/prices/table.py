"""The price table: US dollars per 1M tokens for each model, dated and sourced, as Decimal, with the facts about
each model the bot acts on (`ModelFacts`: reasoning efforts, temperature, token limits, shutdown date).

The bundled bot/prices/prices.json is read first; the JSON file named by DISTILL_PRICES (same format) overrides
or adds entries. Costs come out in integer micro-dollars: USD per 1M tokens times tokens is micro-USD, so
the only rounding is one step up to the next whole micro-dollar per cost, and a quote never under-states.
"""

from __future__ import annotations

import importlib.resources
import json
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np

from bot.core.errors import PriceError
from bot.core.money import micro_usd_rounded_up
from bot.prompts.encodings import base_model_name

_EXAMPLE = (
    '{"models": {"MODEL": {"input": "2.50", "cached_input": "1.25", "output": "10.00", "training": null, '
    '"batch_discount": "0.5", "as_of": "2026-01-31", "source": "https://developers.openai.com/api/docs/pricing"}}}'
)


# OpenAI's ReasoningEffort enum, cheapest first (openapi.yaml, schema ReasoningEffort, lines 57173-57184). Not
# every reasoning model takes every value: each entry lists its own.
EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh", "max")
TEMPERATURE_RULES = ("always", "with_effort_none", "never")
KINDS = ("chat", "embedding")
PROVIDERS = {"openai.com": "openai", "together.ai": "together", "together.xyz": "together"}


@dataclass(frozen=True)
class ModelFacts:
    """What the provider says a model takes and when it goes away, as the price table records it."""

    kind: str = "chat"  # chat | embedding
    provider: str | None = None  # openai | together; None when the table cannot tell
    reasoning_efforts: tuple[str, ...] = ()  # reasoning_effort values it accepts, cheapest first; () not a reasoner
    default_effort: str | None = None  # what it uses when a request sends no reasoning_effort
    temperature: str = "always"  # always | with_effort_none | never
    context_window_tokens: int | None = None
    max_input_tokens: int | None = None
    max_output_tokens: int | None = None
    dimensions: int | None = None  # embeddings only
    shutdown_date: date | None = None
    shutdown_source: str | None = None

    @property
    def reasons(self) -> bool:
        return bool(self.reasoning_efforts)

    def accepts_temperature(self, effort: str | None) -> bool:
        """Whether a request at `effort` may carry temperature (OpenAI: reasoning models only with effort none)."""
        return self.temperature == "always" or (self.temperature == "with_effort_none" and effort == "none")

    def shut_down(self, today: date) -> bool:
        return self.shutdown_date is not None and self.shutdown_date <= today

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind, "provider": self.provider, "reasoning_efforts": list(self.reasoning_efforts),
            "default_effort": self.default_effort, "temperature": self.temperature,
            "context_window_tokens": self.context_window_tokens, "max_input_tokens": self.max_input_tokens,
            "max_output_tokens": self.max_output_tokens, "dimensions": self.dimensions,
            "shutdown_date": self.shutdown_date.isoformat() if self.shutdown_date else None,
            "shutdown_source": self.shutdown_source,
        }


@dataclass(frozen=True)
class ModelPrice:
    model: str
    input_usd_per_1m: Decimal
    cached_input_usd_per_1m: Decimal | None
    output_usd_per_1m: Decimal
    training_usd_per_1m: Decimal | None  # per 1M trained tokens; None: not fine-tunable per the table
    batch_discount: Decimal  # share off input and output with the Batch API (OpenAI: 50%)
    as_of: date
    source: str
    batch_input_usd_per_1m: Decimal | None = None  # where OpenAI's batch price is not a flat discount
    batch_output_usd_per_1m: Decimal | None = None
    note: str | None = None
    training_minimum_usd: Decimal | None = None  # the least a fine-tuning job costs (Together: $4.00 per job)
    cache_write_usd_per_1m: Decimal | None = None  # 30-minute prompt-cache writes, where OpenAI prices them
    facts: ModelFacts = ModelFacts()

    def rates(self, *, batch: bool = False) -> tuple[Decimal, Decimal]:
        """USD per 1M input and output tokens (micro-USD per token), live or through the Batch API."""
        input_price, output_price = self.input_usd_per_1m, self.output_usd_per_1m
        if batch:
            kept = 1 - self.batch_discount
            explicit_input, explicit_output = self.batch_input_usd_per_1m, self.batch_output_usd_per_1m
            input_price = explicit_input if explicit_input is not None else input_price * kept
            output_price = explicit_output if explicit_output is not None else output_price * kept
        return input_price, output_price

    def cost_micro_usd(self, prompt_tokens: int, completion_tokens: int, *, batch: bool = False) -> int:
        """Cost of the tokens, rounded up to a whole micro-dollar."""
        input_price, output_price = self.rates(batch=batch)
        return micro_usd_rounded_up(prompt_tokens * input_price + completion_tokens * output_price)

    def requests_cost_micro_usd(self, prompt_tokens: np.ndarray, completion_tokens: int, *,
                                batch: bool = False) -> int:
        """The sum of `cost_micro_usd(p, completion_tokens)` over the requests' prompt tokens `p`, each rounded up
        as the collector books it, in integer arithmetic (a hundred thousand rows at numpy speed)."""
        rates = self.rates(batch=batch)
        places = max(0, *(-rate.as_tuple().exponent for rate in rates))  # Decimal exponents are ints here
        scale = 10 ** places
        input_scaled, output_scaled = (int(rate * scale) for rate in rates)
        scaled = np.asarray(prompt_tokens, dtype=np.int64) * input_scaled + completion_tokens * output_scaled
        return int((-(-scaled // scale)).sum())

    def training_cost_micro_usd(self, trained_tokens: int) -> int:
        """Fine-tuning cost of `trained_tokens` (training-file tokens times epochs), rounded up."""
        if self.training_usd_per_1m is None:
            raise PriceError(
                f"The price table has no training price for {self.model}, so it cannot be the student. Pick a "
                f"model with one (see bot/prices/prices.json), or add a \"training\" price through DISTILL_PRICES."
            )
        cost = micro_usd_rounded_up(trained_tokens * self.training_usd_per_1m)
        return max(cost, self.training_minimum_micro_usd)

    @property
    def training_minimum_micro_usd(self) -> int:
        return 0 if self.training_minimum_usd is None else micro_usd_rounded_up(self.training_minimum_usd * 1_000_000)

    def training_minimum_applies(self, trained_tokens: int) -> bool:
        """Whether the job's minimum charge, not its tokens, sets the training cost."""
        return self.training_cost_micro_usd(trained_tokens) == self.training_minimum_micro_usd > micro_usd_rounded_up(
            trained_tokens * (self.training_usd_per_1m or 0))

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "input": _text(self.input_usd_per_1m),
            "cached_input": _text(self.cached_input_usd_per_1m),
            "output": _text(self.output_usd_per_1m),
            "training": _text(self.training_usd_per_1m),
            "training_minimum": _text(self.training_minimum_usd),
            "batch_discount": _text(self.batch_discount),
            "batch_input": _text(self.batch_input_usd_per_1m),
            "batch_output": _text(self.batch_output_usd_per_1m),
            "cache_write": _text(self.cache_write_usd_per_1m),
            "as_of": self.as_of.isoformat(),
            "source": self.source,
            **self.facts.to_dict(),
        }


def non_negative_decimal(raw: object) -> Decimal | None:
    """A price read from JSON (a string or a number) as a Decimal; None when it is not a finite number >= 0."""
    try:
        value = Decimal(str(raw))
    except InvalidOperation:
        return None
    return value if value.is_finite() and value >= 0 else None


def price_files(override_path: Path | None) -> list[tuple[str, str]]:
    """(text, where) of the bundled bot/prices/prices.json and then, if set, of the DISTILL_PRICES file."""
    bundled = importlib.resources.files("bot.prices").joinpath("prices.json").read_text(encoding="utf-8")
    files = [(bundled, "bot/prices/prices.json")]
    if override_path is not None:
        try:
            files.append((Path(override_path).read_text(encoding="utf-8"), str(override_path)))
        except OSError as exc:
            raise PriceError(
                f"DISTILL_PRICES points to {override_path}, which cannot be read ({exc.strerror}). "
                "Fix the path or unset DISTILL_PRICES."
            ) from exc
    return files


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


class PriceTable:
    def __init__(self, prices: dict[str, ModelPrice]) -> None:
        self.prices = prices

    @classmethod
    def load(cls, override_path: Path | None = None) -> PriceTable:
        """The bundled table, with the entries of `override_path` (DISTILL_PRICES) on top."""
        prices: dict[str, ModelPrice] = {}
        for text, where in price_files(override_path):
            prices.update(_parse(text, where))
        return cls(prices)

    def add(self, entries: tuple[ModelPrice, ...]) -> None:
        """Add the price lines a trainer sets for its student (a self-hosted model); a model the table already
        prices differently is refused, since one name cannot have two prices."""
        for entry in entries:
            listed = self.prices.setdefault(entry.model, entry)
            if listed != entry:
                raise PriceError(
                    f"The price table already prices {entry.model} as {listed.facts.provider or 'another'} provider's "
                    f"model ({listed.source}), so it cannot also be a self-hosted student priced by GPU time. Name "
                    "the student by the path its weights have on the cluster instead (student=/models/...)."
                )

    def get(self, model: str) -> ModelPrice:
        """The model's price; a fine-tuned name ft:BASE:org::id is priced by the "ft:BASE" entry."""
        key = f"ft:{base_model_name(model)}" if model.startswith("ft:") else model
        found = self.prices.get(key)
        if found is None:
            raise PriceError(
                f"No price for model '{key}' in the price table. Add it to a JSON file and set DISTILL_PRICES "
                f"to that file's path (US dollars per 1M tokens; training: null unless it can be fine-tuned), "
                f"for example: {_EXAMPLE.replace('MODEL', key)}"
            )
        return found


def _parse(text: str, where: str) -> dict[str, ModelPrice]:
    try:
        data = json.loads(text)
        entries = data["models"]
        if not isinstance(entries, dict):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        raise PriceError(f"{where} is not a price table: expected JSON like {_EXAMPLE}") from None
    return {model: _entry(model, fields, where) for model, fields in entries.items()}


def _entry(model: str, fields: Any, where: str) -> ModelPrice:
    if not isinstance(fields, dict):
        raise PriceError(f"{where}: model '{model}' should map to an object like {_EXAMPLE}")

    def amount(key: str, *, required: bool = True) -> Decimal | None:
        raw = fields.get(key)
        if raw is None and not required:
            return None
        value = non_negative_decimal(raw)
        if value is None:
            raise PriceError(f"{where}: model '{model}' needs \"{key}\" as a number >= 0 (got {raw!r}).")
        return value

    discount = amount("batch_discount", required=False)
    if discount is not None and discount >= 1:
        raise PriceError(f"{where}: model '{model}' has batch_discount {discount}; it is a share below 1, e.g. 0.5.")
    try:
        as_of = date.fromisoformat(str(fields.get("as_of")))
    except ValueError:
        raise PriceError(f"{where}: model '{model}' needs \"as_of\" as a date such as 2026-01-31.") from None
    source = fields.get("source")
    if not isinstance(source, str) or not source.startswith("http"):
        raise PriceError(f"{where}: model '{model}' needs \"source\", the URL the price was read from.")
    return ModelPrice(
        model=model,
        input_usd_per_1m=amount("input"),
        cached_input_usd_per_1m=amount("cached_input", required=False),
        output_usd_per_1m=amount("output"),
        training_usd_per_1m=amount("training", required=False),
        batch_discount=discount if discount is not None else Decimal(0),
        as_of=as_of,
        source=source,
        batch_input_usd_per_1m=amount("batch_input", required=False),
        batch_output_usd_per_1m=amount("batch_output", required=False),
        note=fields.get("note"),
        training_minimum_usd=amount("training_minimum", required=False),
        cache_write_usd_per_1m=amount("cache_write", required=False),
        facts=_facts(model, fields, where, source),
    )


def _facts(model: str, fields: dict[str, Any], where: str, source: str) -> ModelFacts:
    """The entry's model facts, each checked; a wrong one is named with the values it may take."""

    def problem(text: str) -> PriceError:
        return PriceError(f"{where}: model '{model}' {text}")

    def one_of(key: str, options: tuple[str, ...], default: str | None) -> str | None:
        value = fields.get(key, default)
        if value is not None and value not in options:
            raise problem(f"has \"{key}\": {value!r}; expected one of {', '.join(options)}.")
        return value

    def whole(key: str) -> int | None:
        value = fields.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise problem(f"needs \"{key}\" as a whole number of tokens >= 1 (got {value!r}).")
        return value

    efforts = fields.get("reasoning_efforts") or []
    if not isinstance(efforts, list) or any(e not in EFFORTS for e in efforts) or len(set(efforts)) < len(efforts):
        raise problem(f"has \"reasoning_efforts\": {efforts!r}; expected a list of distinct values from "
                      f"{', '.join(EFFORTS)}, or null for a model that does not reason.")
    ordered = tuple(e for e in EFFORTS if e in efforts)
    default_effort = fields.get("default_effort")
    if (default_effort is None) != (not ordered) or (default_effort is not None and default_effort not in ordered):
        raise problem(f"has \"default_effort\": {default_effort!r}; a reasoning model names one of its "
                      f"reasoning_efforts ({', '.join(ordered) or 'none listed'}), any other model none.")
    derived = "always" if not ordered else "with_effort_none" if "none" in ordered else "never"
    temperature = one_of("temperature", TEMPERATURE_RULES, derived)
    if temperature == "with_effort_none" and "none" not in ordered:
        raise problem("has \"temperature\": \"with_effort_none\" but no effort none among its reasoning_efforts.")
    try:
        shutdown = fields.get("shutdown_date")
        shutdown_date = date.fromisoformat(shutdown) if shutdown is not None else None
    except (TypeError, ValueError):
        raise problem(f"has \"shutdown_date\": {shutdown!r}; expected a date such as 2027-01-14.") from None
    shutdown_source = fields.get("shutdown_source")
    if shutdown_date is not None and not (isinstance(shutdown_source, str) and shutdown_source.startswith("http")):
        raise problem("needs \"shutdown_source\", the URL that announced its shutdown date.")
    host = urlparse(source).hostname or ""
    guessed = next((name for domain, name in PROVIDERS.items() if host == domain or host.endswith("." + domain)),
                   None)
    return ModelFacts(
        kind=one_of("kind", KINDS, "chat") or "chat",
        provider=one_of("provider", tuple(sorted(set(PROVIDERS.values()))), guessed),
        reasoning_efforts=ordered,
        default_effort=default_effort,
        temperature=temperature or derived,
        context_window_tokens=whole("context_window_tokens"),
        max_input_tokens=whole("max_input_tokens"),
        max_output_tokens=whole("max_output_tokens"),
        dimensions=whole("dimensions"),
        shutdown_date=shutdown_date,
        shutdown_source=shutdown_source,
    )
