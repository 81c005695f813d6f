"""Trainers behind one interface (bot/trainers/base.py), chosen by the run spec's `trainer`: the fine-tuning back
ends, and dicl, which fine-tunes nothing (bot/trainers/dicl.py)."""

from __future__ import annotations

from collections.abc import Callable

from bot.core.clock import Clock
from bot.core.config import Settings
from bot.core.errors import ConfigError
from bot.costs.quotes import Billing
from bot.trainers.base import BackEnd
from bot.trainers.dicl import DiclTrainer
from bot.trainers.openai import OpenAITrainer
from bot.trainers.ray import RayTrainer
from bot.trainers.together import TogetherTrainer

BACK_ENDS: dict[str, type[OpenAITrainer] | type[TogetherTrainer] | type[RayTrainer] | type[DiclTrainer]] = {
    TogetherTrainer.name: TogetherTrainer,
    OpenAITrainer.name: OpenAITrainer,
    RayTrainer.name: RayTrainer,
    DiclTrainer.name: DiclTrainer,
}
TRAINERS: dict[str, Callable[[Settings, Clock], BackEnd]] = {name: cls.from_settings for name, cls in BACK_ENDS.items()}


def get_trainer(name: str, settings: Settings, clock: Clock | None = None) -> BackEnd:
    """The back end called `name`, configured from the settings (ConfigError names what is missing)."""
    factory = TRAINERS.get(name)
    if factory is None:
        raise ConfigError(
            f"No trainer called {name!r} in this version of the bot. Available: {', '.join(TRAINERS)}. "
            f"Set trainer={next(iter(TRAINERS))} on the run."
        )
    return factory(settings, clock or Clock())


def billing_for(name: str, student: str, settings: Settings | None = None) -> Billing:
    """How a run trained at `name` bills beyond the per-model price lines, from the price table alone (so an
    estimate needs no credentials); an unknown trainer bills like OpenAI and is refused when it trains."""
    back_end = BACK_ENDS.get(name)
    return back_end.price_billing(student, settings or Settings()) if back_end else Billing(name)
