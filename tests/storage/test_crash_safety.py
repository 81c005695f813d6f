"""A process killed with SIGKILL inside a large write transaction leaves a sound database."""

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

from bot.cli.main import main as cli_main
from tests.waiting import killed_after, pause

CHILD = r"""
import asyncio, sys
from storage import Storage

async def main(path):
    store = await Storage.open(path)
    async with store.db.transaction() as conn:
        for chunk in range(10_000):
            await conn.executemany(
                "INSERT INTO audit_log (actor, action, detail_json, created_at) VALUES (?, ?, ?, ?)",
                [("U1", "bulk", "{}", "t")] * 100,
            )
            if chunk == 20:
                print("inside", flush=True)
    print("committed", flush=True)

asyncio.run(main(sys.argv[1]))
"""


def test_sigkill_mid_transaction_keeps_all_or_nothing(tmp_path: Path, capsys):
    path = tmp_path / "crash.db"
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(path)], stdout=subprocess.PIPE, text=True,
                             cwd=Path(__file__).resolve().parents[2])
    assert child.stdout.readline().strip() == "inside"
    pause(0.2)  # well inside the child's transaction
    os.kill(child.pid, signal.SIGKILL)
    with killed_after(child, 10):
        child.wait()
    assert child.returncode == -signal.SIGKILL

    assert cli_main(["db", "check", "--db", str(path)]) == 0
    assert "integrity ok" in capsys.readouterr().out
    conn = sqlite3.connect(path)
    try:
        count = conn.execute("SELECT COUNT(*) FROM audit_log").fetchone()[0]
    finally:
        conn.close()
    assert count == 0  # killed long before the million rows could commit: none of them is there
