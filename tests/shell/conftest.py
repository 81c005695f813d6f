"""Shell sessions run in-process: `await shell(script_text)` returns the exit status, stdout and stderr."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.examples import TICKETS_CSV
from sandbox.shell.cli import start_session
from sandbox.shell.session import SessionOptions
from tests.conftest import TODAY

# A run with the bundled CSV, ready to collect (small splits keep each test to a few seconds).
READY = f"""/distill new tickets
:upload {TICKETS_CSV}
/distill set tickets label=category train=30 eval=20
"""


@dataclass
class Outcome:
    status: int
    out: str
    err: str


@pytest.fixture
def shell(tmp_path: Path, capsys):
    async def run(text: str, *, db: Path | None = None, **options) -> Outcome:
        capsys.readouterr()
        out = io.StringIO()
        status = await start_session(
            SessionOptions(db=db or tmp_path / "distill.db", card_interval=0.05, base_dir=tmp_path, today=TODAY,
                           **{"clock_speed": 600.0, **options}),
            text.splitlines(), out)
        return Outcome(status, out.getvalue(), capsys.readouterr().err)

    return run
