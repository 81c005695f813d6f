"""Together's file upload as together-py 3.1.1 performs it (lib/resources/files.py AsyncUploadManager; notes §4.4),
over the OpenAI sandbox's file store:

1. `POST /v1/files`, multipart form of metadata only (purpose, file_name, file_type, checksum = sha256 hex), is
   answered 302 with `Location` (a signed PUT URL) and `X-Together-File-Id`. (A 200 without them makes the SDK PUT
   to "https://mock-upload-url.com", so the redirect is the only answer that works.)
2. `PUT /upload/{file_id}?signature=...`: the bytes. The URL's signature authorizes it, not the API key (the SDK
   sends none there); a second PUT, a wrong signature or bytes whose sha256 is not the announced checksum are
   refused.
3. `POST /v1/files/{file_id}/preprocess`: the FileResponse {id, bytes, created_at, filename, FileType, object,
   purpose, processing_status, validation_report}, which the SDK returns from `files.upload`.

`GET /v1/files/{id}` answers the same FileResponse once the bytes are in; `DELETE /v1/files/{id}` removes the file
and answers FileDeleteResponse `{"id", "deleted": true}`. Ids come from the shared store ("file-"
and 22 letters; Together's are "file-" and a UUID).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from aiohttp import web

from sandbox.openai.errors import APIError, bad_request, not_found
from sandbox.openai.files import Files, StoredFile

PURPOSES = ("fine-tune", "eval", "batch-api", "calibration")
FILE_TYPES = ("jsonl", "parquet", "csv")
UPLOAD_PATH = "/upload/"  # where the signed PUT URLs point; outside the API key's reach, like a storage bucket


@dataclass
class Pending:
    """An upload announced by POST /v1/files whose bytes have not arrived yet."""

    stored: StoredFile
    checksum: str
    file_type: str
    signature: str
    received: bool = False


def file_json(stored: StoredFile, file_type: str = "jsonl") -> dict:
    lines = sum(1 for line in stored.content.splitlines() if line.strip())
    return {"id": stored.id, "object": "file", "created_at": stored.created_at, "filename": stored.filename,
            "bytes": len(stored.content), "purpose": stored.purpose, "FileType": file_type,
            "processing_status": "COMPLETED",
            "validation_report": {"valid": True, "dataset_format": "conversation", "nlines": lines,
                                  "file_id": stored.id}}


class TogetherFiles:
    def __init__(self, files: Files, secret: str) -> None:
        self.files = files
        self._secret = secret.encode()
        self._pending: dict[str, Pending] = {}

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/v1/files", self.announce), web.put(UPLOAD_PATH + "{file_id}", self.receive),
                web.post("/v1/files/{file_id}/preprocess", self.preprocess),
                web.get("/v1/files/{file_id}", self.retrieve), web.delete("/v1/files/{file_id}", self.delete)]

    def _sign(self, file_id: str) -> str:
        return hmac.new(self._secret, file_id.encode(), hashlib.sha256).hexdigest()[:32]

    def _pending_upload(self, file_id: str) -> Pending:
        pending = self._pending.get(file_id)
        if pending is None:
            raise not_found(f"No such File object: {file_id}", param="file_id")
        return pending

    def stored(self, file_id: str, param: str = "training_file") -> StoredFile:
        """An uploaded file; 404 for an unknown one or one whose bytes never arrived."""
        pending = self._pending.get(file_id)
        if pending is None or not pending.received:
            raise not_found(f"No such File object: {file_id}", param=param)
        return pending.stored

    def content(self, file_id: str, param: str = "training_file") -> bytes:
        return self.stored(file_id, param).content

    async def announce(self, request: web.Request) -> web.Response:
        if not request.content_type.startswith("multipart/"):
            raise bad_request("Upload files as multipart/form-data with the fields purpose, file_name, file_type "
                              "and checksum.")
        form = await request.post()
        purpose, name = form.get("purpose"), form.get("file_name")
        file_type, checksum = str(form.get("file_type") or ""), str(form.get("checksum") or "")
        if purpose not in PURPOSES:
            raise bad_request(f"Invalid purpose {purpose!r}. Available: {', '.join(PURPOSES)}.", param="purpose")
        if not isinstance(name, str) or not name.strip():
            raise bad_request("Missing required field 'file_name'.", param="file_name")
        if file_type not in FILE_TYPES:
            raise bad_request(f"Invalid file_type {file_type!r}. Available: {', '.join(FILE_TYPES)}.",
                              param="file_type")
        if len(checksum) != 64 or any(c not in "0123456789abcdef" for c in checksum):
            raise bad_request("Missing or invalid 'checksum': the sha256 of the file, as 64 hex digits.",
                              param="checksum")
        stored = self.files.add(name, str(purpose), b"")
        pending = Pending(stored, checksum, file_type, self._sign(stored.id))
        self._pending[stored.id] = pending
        location = f"{request.url.origin()}{UPLOAD_PATH}{stored.id}?signature={pending.signature}"
        return web.Response(status=302, headers={"Location": location, "X-Together-File-Id": stored.id})

    async def receive(self, request: web.Request) -> web.Response:
        pending = self._pending_upload(request.match_info["file_id"])
        if not hmac.compare_digest(request.query.get("signature", ""), pending.signature):
            raise APIError(403, "The upload URL's signature is not valid for this file.", type="authentication_error")
        if pending.received:
            raise APIError(409, f"File {pending.stored.id} has already been uploaded.", param="file_id")
        content = await request.read()
        if hashlib.sha256(content).hexdigest() != pending.checksum:
            raise bad_request("The uploaded bytes do not match the checksum announced for them.", param="checksum")
        pending.stored.content, pending.received = content, True
        return web.Response(status=200)

    async def preprocess(self, request: web.Request) -> web.Response:
        pending = self._pending_upload(request.match_info["file_id"])
        if not pending.received:
            raise bad_request(f"File {pending.stored.id} has no content yet: PUT it to the upload URL first.",
                              param="file_id")
        return web.json_response(file_json(pending.stored, pending.file_type))

    async def retrieve(self, request: web.Request) -> web.Response:
        pending = self._pending_upload(request.match_info["file_id"])
        if not pending.received:
            raise not_found(f"No such File object: {pending.stored.id}", param="file_id")
        return web.json_response(file_json(pending.stored, pending.file_type))

    async def delete(self, request: web.Request) -> web.Response:
        pending = self._pending_upload(request.match_info["file_id"])
        del self._pending[pending.stored.id]
        self.files.remove(pending.stored.id)
        return web.json_response({"id": pending.stored.id, "deleted": True})
