"""A collection killed with SIGKILL halfway resumes and pays for at most the requests that were in flight."""

import asyncio
import signal
import sqlite3
import sys
from pathlib import Path

from tests.collect.helpers import paid_per_prompt

ROOT = Path(__file__).resolve().parents[2]
ROWS, CONCURRENCY = 600, 8

CHILD = """
import asyncio, sys
from types import SimpleNamespace
from storage import Storage
from tests.collect.helpers import make_collector, make_task, unlimited

async def main(db, url):
    storage = await Storage.open(db)
    run = await storage.runs.by_name("C1", "crash")
    if run is None:
        run = await storage.runs.create(name="crash", channel_id="C1", requester="U1", spec={})
    collector = make_collector(storage, SimpleNamespace(url=url, api_key="sk-sandbox"), concurrency=int(sys.argv[3]))
    outcome = await collector.collect(make_task(run.id, int(sys.argv[4])), unlimited())
    print("finished", outcome.answered, outcome.already_answered, flush=True)

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


def _answered(db: Path) -> int:
    if not db.exists():
        return 0
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT COUNT(*) FROM completions WHERE status = 'ok'").fetchone()[0]
    except sqlite3.OperationalError:
        return 0
    finally:
        conn.close()


async def _start(db: Path, url: str):
    arguments = [str(db), url, str(CONCURRENCY), str(ROWS)]
    return await asyncio.create_subprocess_exec(sys.executable, "-c", CHILD, *arguments, cwd=ROOT,
                                                stdout=asyncio.subprocess.PIPE)


async def test_sigkill_halfway_then_restart_finishes_and_pays_at_most_the_in_flight_requests_again(
        tmp_path, make_openai_sandbox):
    sandbox = await make_openai_sandbox(latency_seconds=0.02)
    db = tmp_path / "crash.db"
    first = await _start(db, sandbox.url)
    while _answered(db) < ROWS // 3:
        assert first.returncode is None, "the first collection ended before it could be killed"
        await asyncio.sleep(0.02)
    first.send_signal(signal.SIGKILL)
    await first.wait()
    answered_at_kill = _answered(db)
    assert answered_at_kill < ROWS

    second = await _start(db, sandbox.url)
    out, _ = await asyncio.wait_for(second.communicate(), timeout=120)
    assert second.returncode == 0
    _, new, already = out.decode().split()
    assert int(already) == answered_at_kill and int(new) == ROWS - answered_at_kill
    assert _answered(db) == ROWS
    paid = paid_per_prompt(sandbox)
    assert len(paid) == ROWS
    assert sum(paid.values()) - ROWS <= CONCURRENCY  # only requests in flight at the kill were paid twice
