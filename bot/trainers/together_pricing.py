"""Together AI's prices that one price-table line per model cannot hold: the fine-tuning rate by model size and
training type with the minimum charge per job, and the hourly price of the dedicated hardware that serves a
fine-tuned student for its eval.

They live in the "together" section of bot/prices/prices.json (dated and sourced), overridable through the file
DISTILL_PRICES names, like the rest of the table. Together's formula (docs.together.ai/docs/fine-tuning/pricing):
tokens processed = n_epochs x training-file tokens (+ n_evals x validation-file tokens), times the rate of the
model's size bracket for the method (SFT) and implementation (LoRA or full), and at least the $4.00 minimum charge.
Serverless LoRA inference is discontinued, so the fine-tuned model answers the eval from a v2 dedicated deployment
billed per minute of each ready replica; `dedicated.hardware` names, per student, the hardware its fine-tunes can
run on (the cheapest priced one is quoted). A student Together trains but cannot host has no entry there, and its
quote is refused with the students that can. Amounts are Decimal dollars in, whole micro-dollars out, rounded up so
a quote never under-states.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from bot.core.errors import PriceError
from bot.core.money import format_usd, micro_usd_rounded_up
from bot.costs.quotes import Billing, Hosting
from bot.prices.table import non_negative_decimal, price_files

TrainingType = Literal["lora", "full"]
TRAINING_TYPES: tuple[TrainingType, ...] = ("lora", "full")

# What the trainer quoted for the eval's endpoint since issue 10 (docs.together.ai/docs/dedicated-endpoints-ui:
# "wait up to 10 minutes for the endpoint to be deployed"): 10 minutes to provision and a pace the eval beats with
# room to spare. Provisioning is not billed on v2 (docs DMI pricing), so those minutes are a margin.
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
    minimum_usd: Decimal
    cost_micro_usd: int

    @property
    def trained_tokens(self) -> int:
        return self.epochs * self.file_tokens

    def explain(self) -> str:
        kind = "LoRA" if self.training_type == "lora" else "full"
        tokens_cost = _ceil_micro(Decimal(self.trained_tokens) * self.usd_per_1m / _MICRO)
        minimum = (f"; below the ${self.minimum_usd} minimum charge per job, so {format_usd(self.cost_micro_usd)}"
                   if self.cost_micro_usd > tokens_cost else f" (at least ${self.minimum_usd} per job)")
        return (f"Together bills epochs x training tokens x the rate for the model's size: {self.epochs} x "
                f"{self.file_tokens:,} tokens x ${self.usd_per_1m} per 1M ({kind} fine-tuning, models "
                f"{self.bracket}; {self.model} has {self.billion_params}B parameters) = {format_usd(tokens_cost)}"
                f"{minimum}.")


def _ceil_micro(usd: Decimal) -> int:
    return micro_usd_rounded_up(usd * _MICRO)


class TogetherPrices:
    def __init__(self, brackets: list[Bracket], billion_params: dict[str, Decimal], usd_per_hour: dict[str, Decimal],
                 hardware: dict[str, list[str]], minimum_usd: Decimal, dedicated_as_of: str = "",
                 dedicated_source: str = "") -> None:
        self.brackets = brackets
        self.billion_params = billion_params
        self.usd_per_hour = usd_per_hour
        self.hardware = hardware  # student -> the hardware ids its fine-tunes run on
        self.minimum_usd = minimum_usd
        self.dedicated_as_of = dedicated_as_of
        self.dedicated_source = dedicated_source

    @classmethod
    def load(cls, override_path: Path | None = None) -> TogetherPrices:
        """The bundled "together" section, with the one in `override_path` (DISTILL_PRICES) on top."""
        (bundled, where), *overrides = price_files(override_path)
        section = _section(bundled, where)
        for text, override_where in overrides:
            extra = _section(text, override_where, required=False)
            section["billion_params"] = {**section.get("billion_params", {}), **extra.get("billion_params", {})}
            dedicated = dict(section["dedicated"])
            for key in ("usd_per_hour", "hardware"):
                dedicated[key] = {**dedicated.get(key, {}), **(extra.get("dedicated") or {}).get(key, {})}
            section["dedicated"] = dedicated
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
        cost = max(_ceil_micro(Decimal(epochs * file_tokens) * rate / _MICRO), _ceil_micro(self.minimum_usd))
        return TrainingCost(model, training_type, size, bracket.label, rate, epochs, file_tokens, self.minimum_usd,
                            cost)

    def hostable(self) -> list[str]:
        """The students whose fine-tunes the table knows dedicated hardware for."""
        return [model for model, hardware in self.hardware.items() if hardware]

    def hosting(self, student: str) -> Hosting:
        """The eval's dedicated deployment for a fine-tune of `student`: the cheapest hardware it runs on."""
        offered = self.hardware.get(student) or []
        serving = f"Students it fine-tunes and serves: {', '.join(self.hostable()) or 'none listed'}."
        if not offered and student not in self.billion_params:
            raise PriceError(
                f"The price table knows no Together student called {student}. {serving} Pick one (student=...), or "
                "train at OpenAI (trainer=openai)."
            )
        if not offered:
            example = json.dumps({"together": {"dedicated": {"hardware": {student: ["1xnvidia-h100-80gb"]}}}})
            raise PriceError(
                f"Together fine-tunes {student}, but the price table names no dedicated hardware that serves its "
                "fine-tunes, and the eval needs one (serverless LoRA is discontinued; some models can be fine-tuned "
                f"but not deployed). {serving} Pick one (student=...), or add its hardware through DISTILL_PRICES: "
                f"{example}."
            )
        return self.hosting_on(offered)

    def hosting_on(self, hardware: list[str], *, usd_per_hour: dict[str, Decimal] | None = None, as_of: str = "",
                   source: str = "") -> Hosting:
        """The cheapest of `hardware` at the table's hourly prices (or at `usd_per_hour`, Together's live ones)."""
        prices = usd_per_hour if usd_per_hour is not None else self.usd_per_hour
        priced = sorted((prices[h], h) for h in hardware if h in prices)
        if not priced:
            raise PriceError(
                f"No dedicated-hardware price for any hardware that can serve this model ({', '.join(hardware)}). "
                "Add one through DISTILL_PRICES: {\"together\": {\"dedicated\": {\"usd_per_hour\": {\"HARDWARE\": "
                "\"3.99\"}}}}."
            )
        usd, chosen = priced[0]
        return Hosting(chosen, usd, as_of or self.dedicated_as_of, source or self.dedicated_source,
                       STARTUP_MINUTES, EVAL_REQUESTS_PER_MINUTE)

    def billing(self, student: str) -> Billing:
        """How a Together run bills beyond the per-model lines: fixed epochs, and the eval's deployment."""
        return Billing("together", auto_epochs=False, hosting=self.hosting(student))


def _section(text: str, where: str, *, required: bool = True) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except ValueError:
        raise PriceError(f"{where} is not JSON; see bot/prices/prices.json for the format.") from None
    section = data.get(_SECTION) if isinstance(data, dict) else None
    if section is None and not required:
        return {}
    if not isinstance(section, dict):
        raise PriceError(f"{where} has no \"{_SECTION}\" section; see bot/prices/prices.json for its format.")
    return dict(section)


def _amount(raw: object, what: str) -> Decimal:
    value = non_negative_decimal(raw)
    if value is None:
        raise PriceError(f"Price table, \"{_SECTION}\": {what} must be a number >= 0 (got {raw!r}).")
    return value


def _parsed(section: dict[str, Any]) -> TogetherPrices:
    brackets: list[Bracket] = []
    low = Decimal(0)
    training = section.get("training") or {}
    for row in training.get("brackets", []):
        up_to = _amount(row.get("up_to_billion_params"), "training.brackets[].up_to_billion_params")
        rates = {kind: _amount(row.get(kind), f"training.brackets[].{kind}") for kind in TRAINING_TYPES}
        brackets.append(Bracket(low, up_to, rates))
        low = up_to
    sizes = {m: _amount(v, f"billion_params.{m}") for m, v in (section.get("billion_params") or {}).items()}
    dedicated = section.get("dedicated") or {}
    hourly = {h: _amount(v, f"dedicated.usd_per_hour.{h}") for h, v in (dedicated.get("usd_per_hour") or {}).items()}
    hardware = {}
    for model, ids in (dedicated.get("hardware") or {}).items():
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise PriceError(f"Price table, \"{_SECTION}\": dedicated.hardware.{model} must be a list of hardware ids.")
        hardware[model] = list(ids)
    minimum = _amount(training.get("minimum_usd", "0"), "training.minimum_usd")
    return TogetherPrices(brackets, sizes, hourly, hardware, minimum, str(dedicated.get("as_of", "")),
                          str(dedicated.get("source", "")))
