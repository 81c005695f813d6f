"""Together's file upload: `POST /v1/files/upload` (multipart: file, file_name, purpose, file_type) and
`GET /v1/files/{id}`, over the OpenAI sandbox's file store.

Shapes from docs.together.ai/reference/upload-file: the answer is {"id", "object": "file", "created_at",
"filename", "bytes", "purpose", "Processed", "FileType", "LineCount"} (those three capitalized, as Together
writes them). Ids come from the shared store ("file-" and 22 letters; Together's are "file-" and a UUID).
"""

from __future__ import annotations

from aiohttp import web

from sandbox.openai.errors import bad_request
from sandbox.openai.files import Files, StoredFile

PURPOSES = ("fine-tune", "eval", "batch-api")
FILE_TYPES = ("jsonl", "parquet", "csv")


def file_json(stored: StoredFile, file_type: str = "jsonl") -> dict:
    return {"id": stored.id, "object": "file", "created_at": stored.created_at, "filename": stored.filename,
            "bytes": len(stored.content), "purpose": stored.purpose, "Processed": True, "FileType": file_type,
            "LineCount": sum(1 for line in stored.content.splitlines() if line.strip())}


class TogetherFiles:
    def __init__(self, files: Files) -> None:
        self.files = files

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/v1/files/upload", self.upload), web.get("/v1/files/{file_id}", self.retrieve)]

    async def upload(self, request: web.Request) -> web.Response:
        if not request.content_type.startswith("multipart/"):
            raise bad_request("Upload files as multipart/form-data with the fields file, file_name and purpose.")
        form = await request.post()
        upload, purpose = form.get("file"), form.get("purpose")
        file_type = str(form.get("file_type") or "jsonl")
        if not isinstance(upload, web.FileField):
            raise bad_request("Missing required field 'file'.", param="file")
        if purpose not in PURPOSES:
            raise bad_request(f"Invalid purpose {purpose!r}. Available: {', '.join(PURPOSES)}.", param="purpose")
        if file_type not in FILE_TYPES:
            raise bad_request(f"Invalid file_type {file_type!r}. Available: {', '.join(FILE_TYPES)}.",
                              param="file_type")
        name = str(form.get("file_name") or upload.filename or "upload.jsonl")
        stored = self.files.add(name, str(purpose), upload.file.read())
        return web.json_response(file_json(stored, file_type))

    async def retrieve(self, request: web.Request) -> web.Response:
        return web.json_response(file_json(self.files.get(request.match_info["file_id"])))
