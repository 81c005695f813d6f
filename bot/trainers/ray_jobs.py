"""A small client of Ray's Jobs REST API (the dashboard's `/api/jobs/`, Ray 2.60) over aiohttp.

Ray quirks handled here (checked against a live head, /work/notes/ray-trl.md §4.3):
- The routes need their trailing slash (`POST /api/jobs/`; `/api/jobs` answers 404).
- A second submission with the same submission_id answers HTTP 500 with a plain-text traceback ending "Job with
  submission_id ... already exists": that is "already submitted", and `submit` returns the id, so a retried start
  reattaches to the job instead of making a second one.
- Errors are text/plain tracebacks, not JSON: the last line is the reason.
- A job's working_dir is a zip uploaded first to the cluster's store (`PUT /api/packages/gcs/_ray_pkg_<hash>.zip`);
  the same bytes give the same name, so it is sent once.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path
from typing import Any

import aiohttp

from bot.trainers.base import TrainerError

TERMINAL = frozenset({"SUCCEEDED", "FAILED", "STOPPED"})
ALREADY_EXISTS = "already exists"


class RayJobError(TrainerError):
    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def package_of(folder: Path) -> tuple[str, bytes]:
    """The folder's .py files as a working_dir zip, and its name in the cluster's store (by content hash)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.glob("*.py")):
            info = zipfile.ZipInfo(path.name, date_time=(1980, 1, 1, 0, 0, 0))
            archive.writestr(info, path.read_bytes())
    data = buffer.getvalue()
    return f"_ray_pkg_{hashlib.sha256(data).hexdigest()[:32]}.zip", data


def _reason(text: str) -> str:
    """The last line of Ray's plain-text traceback (or JSON message), which says what went wrong."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:500] if lines else "no reason given"


class RayJobs:
    def __init__(self, address: str, *, timeout: float = 30.0) -> None:
        self.address = address.rstrip("/")
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _request(self, method: str, path: str, what: str, **kwargs: Any) -> tuple[int, str]:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self.timeout)
        try:
            async with self._session.request(method, self.address + path, **kwargs) as response:
                return response.status, await response.text()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise RayJobError(f"Could not reach the Ray cluster at {self.address} to {what} ({type(exc).__name__}: "
                              f"{exc}). Check RAY_ADDRESS (the dashboard's URL, port 8265 by default) and that the "
                              "head is up.") from exc

    async def _json(self, method: str, path: str, what: str, **kwargs: Any) -> Any:
        status, text = await self._request(method, path, what, **kwargs)
        if status != 200:
            raise RayJobError(f"Ray refused to {what} (HTTP {status}): {_reason(text)}", status)
        return _loads(text, what)

    async def upload_package(self, folder: Path) -> str:
        """Upload the folder as a working_dir package unless the cluster has it; returns its gcs:// URI."""
        name, data = package_of(folder)
        path = f"/api/packages/gcs/{name}"
        status, text = await self._request("GET", path, "look for the job scripts' package")
        if status == 404:
            status, text = await self._request("PUT", path, "upload the job scripts", data=data)
        if status != 200:
            raise RayJobError(f"Ray refused the job scripts' package (HTTP {status}): {_reason(text)}", status)
        return f"gcs://{name}"

    async def submit(self, body: dict[str, Any]) -> str:
        """Submit a job; a submission_id Ray already has is the job submitted before, and is returned as is."""
        status, text = await self._request("POST", "/api/jobs/", "submit a job", json=body)
        if status == 500 and ALREADY_EXISTS in text and body.get("submission_id"):
            return str(body["submission_id"])
        if status != 200:
            raise RayJobError(f"Ray refused the job (HTTP {status}): {_reason(text)}", status)
        return str(_loads(text, "submit a job")["submission_id"])

    async def info(self, submission_id: str) -> dict[str, Any]:
        return await self._json("GET", f"/api/jobs/{submission_id}", f"report on job {submission_id}")

    async def logs(self, submission_id: str) -> str:
        return str((await self._json("GET", f"/api/jobs/{submission_id}/logs",
                                     f"read the logs of job {submission_id}")).get("logs") or "")

    async def stop(self, submission_id: str) -> bool:
        """Ask Ray to stop the job; False when it had already ended (or is gone)."""
        status, text = await self._request("POST", f"/api/jobs/{submission_id}/stop", f"stop job {submission_id}")
        if status == 404:
            return False
        if status != 200:
            raise RayJobError(f"Ray refused to stop job {submission_id} (HTTP {status}): {_reason(text)}", status)
        return bool(_loads(text, "stop a job").get("stopped"))

    async def delete(self, submission_id: str) -> None:
        """Forget an ended job, so its submission_id can be used again."""
        status, text = await self._request("DELETE", f"/api/jobs/{submission_id}", f"delete job {submission_id}")
        if status not in (200, 404):
            raise RayJobError(f"Ray refused to delete job {submission_id} (HTTP {status}): {_reason(text)}", status)


def _loads(text: str, what: str) -> Any:
    import json

    try:
        return json.loads(text)
    except ValueError:
        raise RayJobError(f"Ray's answer to '{what}' is not JSON: {text[:200]!r}. Is RAY_ADDRESS the dashboard's "
                          "URL?") from None
