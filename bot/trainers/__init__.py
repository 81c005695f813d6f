"""Fine-tuning back ends behind one interface (bot/trainers/base.py), chosen by the run spec's `trainer`."""

from __future__ import annotations

from collections.abc import Callable

from bot.clock import Clock
from bot.config import Settings
from bot.errors import ConfigError
from bot.trainers.base import Trainer
from bot.trainers.openai import OpenAITrainer
from bot.trainers.together import TogetherTrainer

TRAINERS: dict[str, Callable[[Settings, Clock], Trainer]] = {
    OpenAITrainer.name: OpenAITrainer.from_settings,
    TogetherTrainer.name: TogetherTrainer.from_settings,
}


def get_trainer(name: str, settings: Settings, clock: Clock | None = None) -> Trainer:
    """The back end called `name`, configured from the settings (ConfigError names what is missing)."""
    factory = TRAINERS.get(name)
    if factory is None:
        raise ConfigError(
            f"No trainer called {name!r} in this version of the bot. Available: {', '.join(TRAINERS)}. "
            f"Set trainer={next(iter(TRAINERS))} on the run."
        )
    return factory(settings, clock or Clock())
