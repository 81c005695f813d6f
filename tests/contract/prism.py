"""The Prism mock server (@stoplight/prism-cli) on OpenAI's spec: install, spec fix-up, start and stop.

Prism validates each request against the operation's schema and answers 422 when it does not fit. It silently
skips a schema its validator cannot compile, and OpenAI's spec has `nullable: true` without a `type` (which
ajv refuses), so every such schema is rewritten into `anyOf: [<schema>, {type: "null"}]` in a copy first.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import yaml

from tests.waiting import pause

PRISM_PACKAGE = "@stoplight/prism-cli@5.14.2"
INSTALL_TIMEOUT_SECONDS = 300
START_TIMEOUT_SECONDS = 180  # it parses the whole OpenAI spec first: ~15 s alone, minutes on a busy machine
_OUTER_KEYS = ("description", "default", "example", "title")


class PrismError(RuntimeError):
    """Prism could not be installed or started; the message says why and what to try."""


def missing_tools() -> list[str]:
    return [tool for tool in ("node", "npm") if shutil.which(tool) is None]


def install(cache_dir: Path) -> Path:
    """The prism executable under `cache_dir`, installed with npm on first use."""
    executable = cache_dir / "node_modules" / ".bin" / "prism"
    if executable.exists():
        return executable
    cache_dir.mkdir(parents=True, exist_ok=True)
    command = ["npm", "install", "--prefix", str(cache_dir), "--no-audit", "--no-fund", "--loglevel=error",
               PRISM_PACKAGE]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_SECONDS, check=False)
    except subprocess.TimeoutExpired:
        raise PrismError(f"`{' '.join(command)}` did not finish in {INSTALL_TIMEOUT_SECONDS}s; check that the npm "
                         "registry is reachable (npm config get registry).") from None
    if done.returncode != 0 or not executable.exists():
        raise PrismError(f"`{' '.join(command)}` failed with exit code {done.returncode}:\n{done.stderr[-2000:]}")
    return executable


def nullable_to_any_of(node: object) -> object:
    """A copy of the spec where each `nullable: true` schema without `type` is an anyOf with null."""
    if isinstance(node, list):
        return [nullable_to_any_of(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: nullable_to_any_of(value) for key, value in node.items()}
    if node.get("nullable") is True and "type" not in node:
        inner = {k: v for k, v in node.items() if k not in (*_OUTER_KEYS, "nullable")}
        outer = {k: v for k, v in node.items() if k in _OUTER_KEYS}
        return {**outer, "anyOf": [inner, {"type": "null"}]}
    return node


def prepared_spec(spec: Path, cache_dir: Path) -> Path:
    """The rewritten spec as JSON, cached by the sha256 of the original."""
    digest = hashlib.sha256(spec.read_bytes()).hexdigest()[:16]
    target = cache_dir / f"openapi-{digest}.json"
    if not target.exists():
        document = yaml.load(spec.read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        partial = target.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(json.dumps(nullable_to_any_of(document), default=str), encoding="utf-8")
        partial.replace(target)
    return target


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _ready(url: str) -> bool:
    try:
        urllib.request.urlopen(urllib.request.Request(url + "/models", headers={"Authorization": "Bearer sk-x"}),
                               timeout=2)
    except urllib.error.HTTPError:
        return True  # any HTTP answer means Prism is serving
    except OSError:
        return False
    return True


@contextlib.contextmanager
def running(executable: Path, spec: Path, log_path: Path) -> Iterator[str]:
    """Prism mocking `spec` on 127.0.0.1; yields its base URL (no /v1: Prism serves the spec's paths as-is)."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    with open(log_path, "w", encoding="utf-8") as log:
        process = subprocess.Popen([str(executable), "mock", "-h", "127.0.0.1", "-p", str(port), str(spec)],
                                   stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + START_TIMEOUT_SECONDS
            while not _ready(url):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise PrismError(f"Prism did not start on {url}; its output:\n"
                                     f"{log_path.read_text(encoding='utf-8')[-3000:]}")
                pause(0.2)
            yield url
        finally:
            process.terminate()
            # Popen.wait(timeout=...) waits with time.sleep: a timer kills Prism instead if it does not stop.
            killer = threading.Timer(10, process.kill)
            killer.start()
            process.wait()
            killer.cancel()

