"""OpenAI-shaped errors: `{"error": {"message", "type", "param", "code"}}` with the matching HTTP status."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable

from aiohttp import web

log = logging.getLogger(__name__)


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
    # Texts as OpenAI sends them on its 500 and 503 (status.openai.com incidents; openai-python issue reports);
    # a 502 comes from a gateway in front of the API, with a body of its own.
    message = {
        500: "The server had an error while processing your request. Sorry about that!",
        502: "Bad gateway.",
        503: "The server is overloaded or not ready yet.",
    }.get(status, f"The sandbox answered HTTP {status} on purpose (fault injection).")
    return APIError(status, message, type="server_error")


async def error_response_on_failure(request: web.Request, answer: Awaitable[web.StreamResponse]) -> web.StreamResponse:
    """`answer`'s response, or the OpenAI-shaped error it failed with (an unexpected exception is a 500)."""
    try:
        return await answer
    except APIError as exc:
        return exc.response()
    except web.HTTPException as exc:
        return APIError(exc.status, f"Invalid URL ({request.method} {request.path})").response()
    except Exception:
        log.exception("Sandbox bug while answering %s %s", request.method, request.path)
        return server_error(500).response()
