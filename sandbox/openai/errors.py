"""OpenAI-shaped errors: `{"error": {"message", "type", "param", "code"}}` with the matching HTTP status."""

from __future__ import annotations

import json

from aiohttp import web


class APIError(Exception):
    """Raised by any handler; the server turns it into OpenAI's error body and status."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.headers = headers or {}

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}

    def response(self) -> web.Response:
        return web.json_response(self.body(), status=self.status, headers=self.headers, dumps=json.dumps)


def bad_request(message: str, param: str | None = None, code: str | None = None) -> APIError:
    return APIError(400, message, param=param, code=code)


def not_found(message: str, param: str | None = None, code: str | None = None) -> APIError:
    return APIError(404, message, param=param, code=code)


def server_error(status: int) -> APIError:
    # Texts as OpenAI sends them on its 500 and 503 (status.openai.com incidents; openai-python issue reports).
    message = {
        500: "The server had an error while processing your request. Sorry about that!",
        503: "The server is overloaded or not ready yet.",
    }.get(status, f"The sandbox answered HTTP {status} on purpose (fault injection).")
    return APIError(status, message, type="server_error")
