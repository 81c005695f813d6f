"""Together AI's prices that one price-table line per model cannot hold: the fine-tuning rate by model size and
training type, and the per-minute price of the dedicated endpoint the fine-tuned model is evaluated on.

They live in the "together" section of bot/prices.json (dated and sourced), overridable through the file
DISTILL_PRICES names, like the rest of the table. Together's formula (docs.together.ai/docs/fine-tuning/pricing):
tokens processed = n_epochs x training-file tokens (+ n_evals x validation-file tokens), times the rate of the
model's size bracket ("Up to 16B", "16.1-69B", "70-100B") for the method (SFT) and implementation (LoRA or full).
A dedicated endpoint bills every minute it exists, requests or not; the bot deletes it right after the eval.
Amounts are Decimal dollars in, whole micro-dollars out, rounded up so a quote never under-states.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from bot.costs import format_usd
from bot.errors import PriceError
from bot.prices import micro_usd_rounded_up, non_negative_decimal, price_files

TrainingType = Literal["lora", "full"]
TRAINING_TYPES: tuple[TrainingType, ...] = ("lora", "full")

# docs.together.ai/docs/dedicated-endpoints-ui: "wait up to 10 minutes for the endpoint to be deployed". The
# quote counts those minutes as billed, and a pace the eval beats with room to spare, so it never under-states.
STARTUP_MINUTES = 10
EVAL_REQUESTS_PER_MINUTE = 120

_MICRO = Decimal(1_000_000)
_SECTION = "together"


@dataclass(frozen=True)
class Bracket:
    low_billion_params: Decimal  # exclusive (0 for the first bracket)
    up_to_billion_params: Decimal  # inclusive
    usd_per_1m: dict[str, Decimal]  # training type -> USD per 1M tokens processed

    @property
    def label(self) -> str:
        return (f"up to {self.up_to_billion_params}B" if not self.low_billion_params
                else f"{self.low_billion_params}-{self.up_to_billion_params}B")


@dataclass(frozen=True)
class TrainingCost:
    model: str
    training_type: TrainingType
    billion_params: Decimal
    bracket: str
    usd_per_1m: Decimal
    epochs: int
    file_tokens: int
    cost_micro_usd: int

    @property
    def trained_tokens(self) -> int:
        return self.epochs * self.file_tokens

    def explain(self) -> str:
        kind = "LoRA" if self.training_type == "lora" else "full"
        return (f"Together bills epochs x training tokens x the rate for the model's size: {self.epochs} x "
                f"{self.file_tokens:,} tokens x ${self.usd_per_1m} per 1M ({kind} fine-tuning, models "
                f"{self.bracket}; {self.model} has {self.billion_params}B parameters) = "
                f"{format_usd(self.cost_micro_usd)}.")


@dataclass(frozen=True)
class EndpointQuote:
    hardware: str
    usd_per_hour: Decimal
    requests: int
    minutes: int
    cost_micro_usd: int

    def explain(self) -> str:
        return (f"The eval runs on a dedicated endpoint ({self.hardware}, ${self.usd_per_hour}/hour, billed per "
                f"minute): about {STARTUP_MINUTES} minutes to start plus {self.minutes - STARTUP_MINUTES} for "
                f"{self.requests:,} requests = {self.minutes} minutes, {format_usd(self.cost_micro_usd)}. The bot "
                "deletes the endpoint as soon as the eval ends.")


def _ceil_micro(usd: Decimal) -> int:
    return micro_usd_rounded_up(usd * _MICRO)


def endpoint_cost_micro_usd(usd_per_hour: Decimal, minutes: int) -> int:
    """A dedicated endpoint's price for whole minutes, rounded up to a micro-dollar."""
    return _ceil_micro(usd_per_hour * minutes / 60)


class TogetherPrices:
    def __init__(self, brackets: list[Bracket], billion_params: dict[str, Decimal],
                 usd_per_hour: dict[str, Decimal]) -> None:
        self.brackets = brackets
        self.billion_params = billion_params
        self.usd_per_hour = usd_per_hour

    @classmethod
    def load(cls, override_path: Path | None = None) -> TogetherPrices:
        """The bundled "together" section, with the one in `override_path` (DISTILL_PRICES) on top."""
        (bundled, where), *overrides = price_files(override_path)
        section = _section(bundled, where)
        for text, override_where in overrides:
            extra = _section(text, override_where, required=False)
            section["billion_params"] = {**section.get("billion_params", {}), **extra.get("billion_params", {})}
            hourly = (extra.get("dedicated") or {}).get("usd_per_hour", {})
            section["dedicated"] = {"usd_per_hour": {**section["dedicated"]["usd_per_hour"], **hourly}}
            section["training"] = extra.get("training") or section["training"]
        return _parsed(section)

    def training_cost(self, model: str, file_tokens: int, epochs: int, training_type: TrainingType) -> TrainingCost:
        size = self.billion_params.get(model)
        if size is None:
            raise PriceError(
                f"The price table does not know how big {model} is, and Together prices training by model size. "
                f"Add it through DISTILL_PRICES: {{\"together\": {{\"billion_params\": {{\"{model}\": \"8\"}}}}}}."
            )
        bracket = next((b for b in self.brackets if size <= b.up_to_billion_params), None)
        if bracket is None:
            raise PriceError(f"Together lists no fine-tuning price for models of {size}B parameters ({model}).")
        rate = bracket.usd_per_1m[training_type]
        cost = _ceil_micro(Decimal(epochs * file_tokens) * rate / _MICRO)
        return TrainingCost(model, training_type, size, bracket.label, rate, epochs, file_tokens, cost)

    def endpoint_quote(self, hardware: list[str], requests: int) -> EndpointQuote:
        """The cheapest of `hardware` (ids the provider offers for the model) that the table prices."""
        priced = [(self.usd_per_hour[h], h) for h in hardware if h in self.usd_per_hour]
        if not priced:
            raise PriceError(
                f"No dedicated-endpoint price for any hardware Together offers for this model ({', '.join(hardware)}). "
                "Add one through DISTILL_PRICES: {\"together\": {\"dedicated\": {\"usd_per_hour\": {\"HARDWARE\": "
                "\"3.99\"}}}}."
            )
        usd_per_hour, chosen = min(priced)
        minutes = STARTUP_MINUTES + math.ceil(requests / EVAL_REQUESTS_PER_MINUTE) + 1  # +1: the minute it is deleted
        return EndpointQuote(chosen, usd_per_hour, requests, minutes, endpoint_cost_micro_usd(usd_per_hour, minutes))


def _section(text: str, where: str, *, required: bool = True) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except ValueError:
        raise PriceError(f"{where} is not JSON; see bot/prices.json for the format.") from None
    section = data.get(_SECTION) if isinstance(data, dict) else None
    if section is None and not required:
        return {}
    if not isinstance(section, dict):
        raise PriceError(f"{where} has no \"{_SECTION}\" section; see bot/prices.json for its format.")
    return dict(section)


def _amount(raw: object, what: str) -> Decimal:
    value = non_negative_decimal(raw)
    if value is None:
        raise PriceError(f"Price table, \"{_SECTION}\": {what} must be a number >= 0 (got {raw!r}).")
    return value


def _parsed(section: dict[str, Any]) -> TogetherPrices:
    brackets: list[Bracket] = []
    low = Decimal(0)
    for row in (section.get("training") or {}).get("brackets", []):
        up_to = _amount(row.get("up_to_billion_params"), "training.brackets[].up_to_billion_params")
        rates = {kind: _amount(row.get(kind), f"training.brackets[].{kind}") for kind in TRAINING_TYPES}
        brackets.append(Bracket(low, up_to, rates))
        low = up_to
    sizes = {m: _amount(v, f"billion_params.{m}") for m, v in (section.get("billion_params") or {}).items()}
    hourly = {h: _amount(v, f"dedicated.usd_per_hour.{h}")
              for h, v in ((section.get("dedicated") or {}).get("usd_per_hour") or {}).items()}
    return TogetherPrices(brackets, sizes, hourly)
