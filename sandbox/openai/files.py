"""Uploaded files: `POST /v1/files` (multipart), `GET /v1/files/{id}`, `GET /v1/files/{id}/content` and
`DELETE /v1/files/{id}` (answered `{"id", "object": "file", "deleted": true}`, as OpenAI's FileDeleted)."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from sandbox.openai.clock import JobClock
from sandbox.openai.errors import bad_request, not_found
from sandbox.openai.ids import new_id

UPLOAD_PURPOSES = ("fine-tune", "batch")


@dataclass
class StoredFile:
    id: str
    filename: str
    purpose: str
    content: bytes
    created_at: int

    def as_json(self) -> dict:
        return {
            "id": self.id,
            "object": "file",
            "bytes": len(self.content),
            "created_at": self.created_at,
            "filename": self.filename,
            "purpose": self.purpose,
            "status": "processed",
        }


class Files:
    def __init__(self, clock: JobClock) -> None:
        self.clock = clock
        self._files: dict[str, StoredFile] = {}

    def add(self, filename: str, purpose: str, content: bytes) -> StoredFile:
        stored = StoredFile(new_id("file-", 22), filename, purpose, content, int(self.clock.now()))
        self._files[stored.id] = stored
        return stored

    def get(self, file_id: str, param: str = "file_id") -> StoredFile:
        if file_id not in self._files:
            raise not_found(f"No such File object: {file_id}", param=param)
        return self._files[file_id]

    def remove(self, file_id: str) -> None:
        self.get(file_id)
        del self._files[file_id]

    def __contains__(self, file_id: str) -> bool:
        return file_id in self._files

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/v1/files", self.create),
            web.get("/v1/files/{file_id}", self.retrieve),
            web.get("/v1/files/{file_id}/content", self.content),
            web.delete("/v1/files/{file_id}", self.delete),
        ]

    async def delete(self, request: web.Request) -> web.Response:
        file_id = request.match_info["file_id"]
        self.remove(file_id)
        return web.json_response({"id": file_id, "object": "file", "deleted": True})

    async def create(self, request: web.Request) -> web.Response:
        if not request.content_type.startswith("multipart/"):
            raise bad_request("Files are uploaded as multipart/form-data with the fields 'file' and 'purpose'.")
        form = await request.post()
        upload, purpose = form.get("file"), form.get("purpose")
        if not isinstance(upload, web.FileField):
            raise bad_request("Missing required parameter: 'file'.", param="file", code="missing_required_parameter")
        if purpose not in UPLOAD_PURPOSES:
            raise bad_request(f"Invalid value for 'purpose': {purpose!r}. The sandbox accepts "
                              + " and ".join(map(repr, UPLOAD_PURPOSES)) + ".", param="purpose")
        stored = self.add(upload.filename or "upload", str(purpose), upload.file.read())
        return web.json_response(stored.as_json())

    async def retrieve(self, request: web.Request) -> web.Response:
        return web.json_response(self.get(request.match_info["file_id"]).as_json())

    async def content(self, request: web.Request) -> web.Response:
        stored = self.get(request.match_info["file_id"])
        return web.Response(body=stored.content, content_type="application/octet-stream")
