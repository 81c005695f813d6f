"""Logging setup with a filter that masks credentials in every record, and the same masking for the database.

The filter masks the configured secret values themselves and anything shaped like a Slack or OpenAI
token, so a library that logs a request (or an exception that quotes one) cannot leak a key. `redactor` is that
masking as a function: the storage passes the free text it stores through it (errors, provider answers, audit
details), and handlers/ every message before Slack sees it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable

from bot.core.config import VARIABLES, Settings

_TOKEN_SHAPES = re.compile(r"\b(xox[abposr]-[A-Za-z0-9-]{6,}|xapp-[A-Za-z0-9-]{6,}|sk-[A-Za-z0-9_-]{8,})")
MASK = "********"


def mask_secrets(text: str, secrets: Iterable[str] = ()) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, MASK)
    return _TOKEN_SHAPES.sub(MASK, text)


def redactor(secrets: Iterable[str]) -> Callable[[str], str]:
    """mask_secrets for these secret values (longest first, so one that contains another is masked whole)."""
    kept = sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)
    return lambda text: mask_secrets(text, kept)


class RedactingFilter(logging.Filter):
    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.redact = redactor(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        masked = self.redact(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        return True


def secret_values(settings: Settings) -> list[str]:
    values = []
    for var in VARIABLES:
        secret = getattr(settings, var.attr) if var.secret else None
        if secret is not None:
            values.append(secret.reveal())
    return values


def configure_logging(settings: Settings) -> None:
    """Log to stderr at LOG_LEVEL, with every handler's records passed through the redacting filter."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter(secret_values(settings)))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level)
