"""trainer=ray in the shell and the demo: a private local Ray head (head.py) and a tiny student built in code
(tiny_model.py) from the bundled tickets CSV, with the settings that point the bot at them. Jobs run on CPU, priced
at a made-up $2.50 a device-hour."""

from __future__ import annotations

import asyncio
import tempfile
from contextlib import AsyncExitStack
from pathlib import Path

from bot.examples import TICKETS_CSV
from sandbox.ray.head import RayHead
from sandbox.ray.tiny_model import build_tiny_model

# The tiny model learns at 25x the LoRA rate the job uses for real models (2e-4), over 8 epochs.
RUN_SETTINGS = "epochs=8 lr=25"


async def start_ray(stack: AsyncExitStack) -> dict[str, str]:
    folder = Path(tempfile.mkdtemp(prefix="distill-ray-"))
    head = RayHead(log_path=folder / "ray-head.log")
    stack.callback(head.stop)
    student = build_tiny_model(TICKETS_CSV.read_text(encoding="utf-8").splitlines(), folder / "tiny-student")
    url = await asyncio.to_thread(head.start)
    (folder / "storage").mkdir()
    return {"RAY_ADDRESS": url, "DISTILL_RAY_STORAGE": str(folder / "storage"), "DISTILL_RAY_GPUS": "0",
            "DISTILL_GPU_HOUR_USD": "2.50", "DISTILL_STUDENT_MODEL": str(student)}
