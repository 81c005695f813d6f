"""A private Ray head on 127.0.0.1 for the tests and the demo: `ray start --head --block` with every port free and
chosen here, the dashboard (which serves the Jobs REST API) on one of them, stopped by its own process ids.

Never `ray stop`: it finds Ray processes by name, machine-wide, and would stop other people's clusters too. Job
entrypoints run in their own sessions and outlive a killed head, so `stop` first stops every live job over REST and
then kills what still carries this head's marker in its environment (spike of 2026-11-29, /work/notes/ray-trl.md §4).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

PORT_FLAGS = ("--port", "--dashboard-port", "--node-manager-port", "--object-manager-port",
              "--dashboard-agent-listen-port", "--dashboard-agent-grpc-port", "--runtime-env-agent-port",
              "--metrics-export-port", "--ray-client-server-port")
MARKER = "DISTILL_RAY_HEAD"  # in the environment of the head and so of every job it runs
LIVE = ("PENDING", "RUNNING")


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


class RayHead:
    def __init__(self, *, num_cpus: int = 2, log_path: Path | None = None) -> None:
        self.num_cpus = num_cpus
        self.log_path = log_path
        self.process: subprocess.Popen | None = None
        self.url = ""
        self._tick = threading.Event()  # never set: its timed waits pace the polls
        # AF_UNIX socket paths under the temp dir may not exceed 107 bytes: keep it short, under /tmp.
        self.temp_dir = tempfile.mkdtemp(prefix="ray", dir="/tmp")
        self.marker = f"{os.getpid()}-{Path(self.temp_dir).name}"

    def start(self, timeout: float = 120.0) -> str:
        """Start the head and wait for the Jobs API; returns the dashboard URL (what RAY_ADDRESS takes)."""
        ports = free_ports(len(PORT_FLAGS) + 2)
        bin_dir = str(Path(sys.executable).parent)
        # The cluster keeps its own time, as a real one does: a test run with the date moved (libfaketime through
        # LD_PRELOAD, whose time.sleep fails with EINVAL) does not reach Ray's processes.
        inherited = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD" and not k.startswith("FAKETIME")}
        env = dict(inherited, RAY_USAGE_STATS_ENABLED="0",
                   RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0",  # else Ray swaps 127.0.0.1 for the eth0 address
                   RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S="0",  # else SIGTERM drains for 30 s while a job runs
                   AUTOSCALER_METRIC_PORT=str(ports[-2]), DASHBOARD_METRIC_PORT=str(ports[-1]),  # fixed otherwise
                   HF_HUB_OFFLINE="1", HF_HUB_DISABLE_TELEMETRY="1",
                   PATH=bin_dir + os.pathsep + os.environ.get("PATH", ""), **{MARKER: self.marker})
        command = [str(Path(bin_dir) / "ray"), "start", "--head", "--block", "--disable-usage-stats",
                   f"--num-cpus={self.num_cpus}", "--num-gpus=0", "--include-dashboard=true",
                   "--dashboard-host=127.0.0.1", "--min-worker-port=0", "--max-worker-port=0",
                   f"--temp-dir={self.temp_dir}", "--object-store-memory=100000000", "--log-style=record",
                   *(f"{flag}={port}" for flag, port in zip(PORT_FLAGS, ports, strict=False))]
        log = open(self.log_path or Path(self.temp_dir) / "head.log", "w")
        self.process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT,
                                        start_new_session=True, cwd=self.temp_dir)
        self.url = f"http://127.0.0.1:{ports[1]}"
        deadline = time.monotonic() + timeout
        while True:
            try:
                self._request("GET", "/api/version")
                return self.url
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"The local Ray head did not start; its log: {log.name}") from None
                self._tick.wait(0.2)  # not time.sleep: libfaketime breaks it when tests move the date

    def stop(self) -> None:
        """Stop live jobs, the head's process group, and any job process left with this head's marker."""
        if self.process is None:
            return
        with contextlib.suppress(OSError, ValueError):
            jobs = json.loads(self._request("GET", "/api/jobs/"))
            live = [job["submission_id"] for job in jobs if job["status"] in LIVE]
            for submission_id in live:
                self._request("POST", f"/api/jobs/{submission_id}/stop")
            deadline = time.monotonic() + 10
            while live and time.monotonic() < deadline:
                live = [s for s in live if json.loads(self._request("GET", f"/api/jobs/{s}"))["status"] in LIVE]
                self._tick.wait(0.2)  # not time.sleep: libfaketime breaks it when tests move the date
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.process.pid, signal.SIGTERM)
        # At most 15 s for a clean stop, then SIGKILL (a timer, not wait(15): that polls with time.sleep).
        timer = threading.Timer(15, self._kill_group, (self.process.pid,))
        timer.start()
        self.process.wait()
        timer.cancel()
        self._kill_group(self.process.pid)
        self._kill_marked()
        shutil.rmtree(self.temp_dir, ignore_errors=True)
        self.process = None

    def _kill_marked(self) -> None:
        tag = f"{MARKER}={self.marker}".encode()
        for pid in filter(str.isdigit, os.listdir("/proc")):
            with contextlib.suppress(OSError):
                if tag in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"):
                    os.kill(int(pid), signal.SIGKILL)

    @staticmethod
    def _kill_group(pid: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)

    def _request(self, method: str, path: str) -> str:
        request = urllib.request.Request(self.url + path, method=method)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.read().decode()

    def __enter__(self) -> RayHead:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
