"""The outside services of a shell session, started on 127.0.0.1: OpenAI's stand-in (unless a real endpoint is
used) and the stand-in of the session's trainer when it has its own provider (Together, the default trainer), each
stopped with the session.
"""

from __future__ import annotations

import importlib
import importlib.util
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

from bot.core.clock import Clock
from sandbox.openai import OpenAISandbox

SANDBOX_OPENAI_KEY = "sk-sandbox"


@dataclass(frozen=True)
class TrainerStandIn:
    """Where a trainer's stand-in server lives and which settings point the bot at it."""

    module: str
    server: str
    url_variable: str
    key_variable: str

    def available(self) -> bool:
        return importlib.util.find_spec(self.module) is not None


TRAINER_STAND_INS = {
    "together": TrainerStandIn("sandbox.together", "TogetherSandbox", "TOGETHER_BASE_URL", "TOGETHER_API_KEY"),
}


async def _serve(stack: AsyncExitStack, server: Any) -> str:
    url = await server.start()
    stack.push_async_callback(server.stop)
    return url


async def start_stand_ins(stack: AsyncExitStack, *, trainer: str, seed: int, clock_speed: float, clock: Clock,
                          openai: bool = True) -> tuple[OpenAISandbox | None, dict[str, str]]:
    """Start the OpenAI stand-in (unless `openai` is False: a real endpoint is used), and the trainer's when it has
    one; returns the OpenAI one and the settings that point the bot at them. Each server stops when `stack`
    closes."""
    sandbox, env = None, {}
    if openai:
        sandbox = OpenAISandbox(api_key=SANDBOX_OPENAI_KEY, seed=seed, clock_speed=clock_speed, clock=clock)
        env = {"OPENAI_BASE_URL": await _serve(stack, sandbox), "OPENAI_API_KEY": SANDBOX_OPENAI_KEY}
    if trainer == "ray":  # a local Ray head and a tiny student instead of a server
        from sandbox.ray.standin import start_ray

        env.update(await start_ray(stack))
    stand_in = TRAINER_STAND_INS.get(trainer)
    if stand_in is not None:
        server = getattr(importlib.import_module(stand_in.module), stand_in.server)(seed=seed, clock_speed=clock_speed,
                                                                                       clock=clock)
        env[stand_in.url_variable] = await _serve(stack, server)
        env[stand_in.key_variable] = server.api_key
    return sandbox, env
