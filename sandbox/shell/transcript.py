"""`--transcript FILE`: every Slack Web API call the app made, one JSON object a line, written as they happen.

Each line is {"method", "arguments", "time", "ok", "error"}: the arguments as the sandbox received them (JSON
fields such as `blocks` decoded, the token left out), `time` in Unix seconds. A program can check a script's
outcome from it, e.g. that exactly one approval request was posted into the run's thread.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import IO

from sandbox.slack import ApiCall


def call_record(call: ApiCall) -> dict:
    return {"method": call.method, "arguments": call.args, "time": call.time, "ok": call.ok, "error": call.error}


class Transcript:
    """Appends the calls recorded since the last `write` (the sandbox keeps them all in `slack.calls`)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._file: IO[str] = path.open("w", encoding="utf-8")
        self._written = 0

    def write(self, calls: list[ApiCall]) -> None:
        for call in calls[self._written:]:
            self._file.write(json.dumps(call_record(call), ensure_ascii=False, default=str) + "\n")
        self._written = len(calls)
        self._file.flush()

    def close(self, calls: list[ApiCall]) -> None:
        self.write(calls)
        self._file.close()
