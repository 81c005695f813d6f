"""trainer=dicl: distillation without fine-tuning (dynamic in-context learning, TensorZero's "dicl" optimizer).

The teacher's valid answers on the train split become an index: each input embedded (bot/collect/embeddings.py, stored
with the run). The "distilled model" is the base student with a prompt built per request: the run's system
prompt, then the k train examples nearest to the row (cosine, bot/train/neighbours.py) as user/assistant turns, most
similar last, then the row. Any chat model the provider serves can be the student, which is the point: OpenAI's
current small models (gpt-6-luna) cannot be fine-tuned, and from 2027-01-06 no OpenAI model can. The stages that
embed and evaluate are bot/train/dicl.py; this module is what the back end offers, checks and bills, and the
prompt it builds.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import openai
from openai import AsyncOpenAI

from bot.core.clock import Clock
from bot.core.config import Secret, Settings
from bot.core.provider import provider_date
from bot.costs.quotes import Billing
from bot.spec.messages import build_messages
from bot.trainers.base import SHUTDOWN_WARNING_DAYS, Deployment, ModelCheck, StudentOption, TrainerError

if TYPE_CHECKING:
    from bot.prices.table import PriceTable
    from bot.spec.settings import RunSpec


def distilled_name(student: str, k: int) -> str:
    """How the distilled model is named in the card, the report and `/distill models`."""
    return f"{student}+dicl(k={k})"


def example_messages(spec: RunSpec, examples: Sequence[tuple[str, str]], user_prompt: str) -> list[dict[str, str]]:
    """One request of the distilled model: the system prompt, each (input, answer) example as a user turn and an
    assistant turn in the order given (the caller puts the most similar last), then the row."""
    *system, row = build_messages(spec, user_prompt)
    turns = [turn for text, answer in examples
             for turn in ({"role": "user", "content": text}, {"role": "assistant", "content": answer})]
    return [*system, *turns, row]


class DiclTrainer:
    name = "dicl"
    in_context = True  # nothing is fine-tuned: the stages are bot/train/dicl.py
    default_student = "gpt-6-luna"  # OpenAI's smallest current model, which cannot be fine-tuned

    def __init__(self, *, base_url: str, api_key: Secret, clock: Clock | None = None, timeout: float = 60.0) -> None:
        self.base_url = base_url
        self.clock = clock or Clock()
        self.client = AsyncOpenAI(base_url=base_url, api_key=api_key.reveal(), timeout=timeout, max_retries=2)

    @classmethod
    def from_settings(cls, settings: Settings, clock: Clock | None = None) -> DiclTrainer:
        settings.require("OPENAI_API_KEY")
        assert settings.openai_api_key is not None
        return cls(base_url=settings.openai_base_url, api_key=settings.openai_api_key, clock=clock)

    async def close(self) -> None:
        await self.client.close()

    @classmethod
    def price_billing(cls, student: str, prices_path: Path | None = None) -> Billing:
        return Billing(cls.name, in_context=True)

    async def billing(self, base_model: str) -> Billing:
        return self.price_billing(base_model)

    def base_model_endpoint(self, model: str) -> Deployment | None:
        return None  # the student answers at OPENAI_BASE_URL, with and without examples

    async def deploy_base(self, model: str) -> Deployment | None:
        return None  # nothing to serve: the provider's own model is the student

    def students(self, prices: PriceTable) -> list[StudentOption]:
        """Any chat model the OpenAI-compatible provider serves today, as the price table lists them."""
        today = self.clock.today()
        return [StudentOption(name, None, price.facts.shutdown_date) for name, price in prices.prices.items()
                if price.facts.kind == "chat" and price.facts.provider == "openai" and not name.startswith("ft:")
                and not price.facts.shut_down(today)]

    async def check_base_model(self, model: str) -> ModelCheck:
        """The student must be served at OPENAI_BASE_URL now; a warning when it stops within the warning window."""
        try:
            found = await self.client.models.retrieve(model)
        except openai.NotFoundError:
            return ModelCheck(model, False, None, (
                f"The provider at {self.base_url} does not serve {model}, so it cannot be the student of trainer=dicl. "
                "Pick a chat model it serves (student=gpt-6-luna; `/distill models` lists them)."))
        except (openai.APIStatusError, openai.APIConnectionError) as exc:
            raise TrainerError(f"Could not ask {self.base_url} about {model} ({type(exc).__name__}). Check "
                               "OPENAI_BASE_URL and the network, then try again.") from exc
        shutdown = provider_date(found.to_dict().get("shutdown_date"))
        days = None if shutdown is None else (shutdown - self.clock.today()).days
        if days is not None and days <= 0:
            return ModelCheck(model, False, shutdown, (
                f"{model} was shut down on {shutdown.isoformat()}: the provider no longer serves it. Pick a current "
                "student model (student=...)."))
        if days is not None and days <= SHUTDOWN_WARNING_DAYS:
            return ModelCheck(model, True, shutdown, (
                f"{model} shuts down on {shutdown.isoformat()} (in {days} days); the distilled model, which is "
                f"{model} with examples in its prompt, stops answering then too."))
        return ModelCheck(model, True, shutdown, "")
