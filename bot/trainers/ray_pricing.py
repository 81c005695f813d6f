"""How trainer=ray is priced: by GPU time at the team's rate (DISTILL_GPU_HOUR_USD), not by tokens.

A quote turns the trained tokens (training-file tokens x epochs) into GPU minutes with the throughput in the "ray"
section of bot/prices/prices.json (the team's own planning figure unless DISTILL_PRICES gives theirs), so training is a
price per 1M trained tokens like every other trainer's: rate / (tokens per GPU-second x 3600) x 1M. The self-hosted
student answers on the team's GPUs, so its tokens cost nothing per token: the eval's server is a `Hosting` line
(startup minutes, then requests per minute) at the rate times the GPUs each job takes. What a job really took is
measured from Ray's start and end times, times its GPUs (a CPU-only job counts as one device).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from bot.core.errors import PriceError
from bot.core.money import format_usd, micro_usd_rounded_up
from bot.costs.quotes import Billing, Hosting
from bot.prices.table import ModelPrice, non_negative_decimal, price_files

_SECTION = "ray"
_MICRO = Decimal(1_000_000)
TRAINER = "ray"


@dataclass(frozen=True)
class RayPrices:
    tokens_per_gpu_second: Decimal
    training_as_of: str
    training_source: str
    startup_minutes: int
    requests_per_minute: int
    serving_as_of: str
    serving_source: str
    gpu_hour_usd: Decimal
    gpus: int  # per job; 0 runs on CPU and counts as one device

    @classmethod
    def load(cls, gpu_hour_usd: Decimal | None, gpus: int = 1, override_path: Any = None) -> RayPrices:
        """The "ray" section (DISTILL_PRICES's on top) at the team's hourly rate per GPU."""
        if gpu_hour_usd is None:
            raise PriceError("trainer=ray prices training and serving by GPU time at the team's rate: set "
                             "DISTILL_GPU_HOUR_USD to what one GPU hour costs you, e.g. DISTILL_GPU_HOUR_USD=2.49.")
        training: dict[str, Any] = {}
        serving: dict[str, Any] = {}
        for text, where in price_files(override_path):
            try:
                section = json.loads(text).get(_SECTION) or {}
            except (ValueError, AttributeError):
                raise PriceError(f"{where} is not JSON; see bot/prices/prices.json for the format.") from None
            training.update(section.get("training") or {})
            serving.update(section.get("serving") or {})
        throughput = non_negative_decimal(training.get("tokens_per_gpu_second"))
        if not throughput:
            raise PriceError("Price table, \"ray\": training.tokens_per_gpu_second must be a number > 0.")
        minutes, pace = serving.get("startup_minutes"), serving.get("requests_per_minute")
        if not isinstance(minutes, int) or minutes < 0 or not isinstance(pace, int) or pace < 1:
            raise PriceError("Price table, \"ray\": serving.startup_minutes (>= 0) and serving.requests_per_minute "
                             "(>= 1) must be whole numbers.")
        return cls(throughput, str(training.get("as_of", "")), str(training.get("source", "")), minutes, pace,
                   str(serving.get("as_of", "")), str(serving.get("source", "")), gpu_hour_usd, gpus)

    @property
    def devices(self) -> int:
        return max(1, self.gpus)

    @property
    def training_usd_per_1m(self) -> Decimal:
        return self.gpu_hour_usd * _MICRO / (self.tokens_per_gpu_second * 3600)

    def quoted_gpu_minutes(self, trained_tokens: int) -> Decimal:
        return Decimal(trained_tokens) / self.tokens_per_gpu_second / 60

    def gpu_minutes_cost_micro_usd(self, gpu_minutes: Decimal) -> int:
        return micro_usd_rounded_up(gpu_minutes * self.gpu_hour_usd * _MICRO / 60)

    def student_prices(self, student: str) -> tuple[ModelPrice, ...]:
        """The per-token lines of a self-hosted student and its fine-tunes: nothing per token, training at the GPU
        time its tokens take."""
        as_of = _date(self.training_as_of)
        source = f"bot/prices/prices.json ray.training ({self.training_source})"
        note = (f"Self-hosted on the team's Ray cluster: tokens are not billed; GPU time is, at "
                f"${self.gpu_hour_usd}/GPU-hour (DISTILL_GPU_HOUR_USD) and {self.tokens_per_gpu_second} trained "
                "tokens per GPU-second.")
        zero = Decimal(0)
        training = self.training_usd_per_1m
        return tuple(ModelPrice(model=name, input_usd_per_1m=zero, cached_input_usd_per_1m=None,
                                output_usd_per_1m=zero, training_usd_per_1m=training if trains else None,
                                batch_discount=zero, as_of=as_of, source=source, note=note)
                     for name, trains in ((student, True), (f"ft:{student}", False)))

    def hosting(self) -> Hosting:
        """The eval's server of base + adapter on the job's GPUs."""
        return Hosting(f"{self.devices}x GPU on the team's Ray cluster", self.gpu_hour_usd, self.serving_as_of,
                       f"DISTILL_GPU_HOUR_USD; bot/prices/prices.json ray.serving ({self.serving_source})",
                       self.startup_minutes, self.requests_per_minute, replicas=self.devices)

    def billing(self, student: str) -> Billing:
        return Billing(TRAINER, auto_epochs=False, hosting=self.hosting(), models=self.student_prices(student))

    def explain(self, trained_tokens: int, epochs: int) -> str:
        minutes = self.quoted_gpu_minutes(trained_tokens)
        return (f"Ray trains on the team's GPUs, priced by GPU time: {trained_tokens:,} trained tokens ({epochs} "
                f"epochs) at {self.tokens_per_gpu_second} tokens per GPU-second (the \"ray\" price table's figure, "
                f"{self.training_source}'s) = {minutes:.1f} GPU minutes at ${self.gpu_hour_usd}/GPU-hour = "
                f"{format_usd(self.gpu_minutes_cost_micro_usd(minutes))}. The report shows the minutes the job "
                "really took.")


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise PriceError(f"Price table, \"ray\": as_of must be a date such as 2026-11-29 (got {text!r}).") from None
