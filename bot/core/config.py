"""Settings read once from the environment and validated at start.

Each variable is declared once in `VARIABLES` (name, default, parser, help); the README's configuration
table and `distill-bot --help` are checked against that list by the tests. Secrets are wrapped in
`Secret`, whose repr is masked, so a settings object can be logged or shown in an error safely.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from bot.core import numbers
from bot.core.errors import ConfigError
from bot.core.money import usd_to_micro

# Where a run's student is fine-tuned (bot/trainers): OpenAI stops taking new fine-tuning jobs after 2027-01-06, so a
# new run trains at Together unless its spec or DISTILL_TRAINER says otherwise. dicl fine-tunes nothing: the student
# answers with the teacher's nearest examples in its prompt (docs/trainers-dicl.md).
TRAINERS = ("together", "openai", "ray", "dicl")
# A small model Together both fine-tunes and serves on dedicated hardware (research notes of 2026-11-29, §3.5, §1.2).
DEFAULT_STUDENT = "Qwen/Qwen3.5-9B"
# together-py 3.x's default; its paths carry /v1, /v2 or /v3 themselves (3.0.0 removed /v1 from the base URL).
TOGETHER_BASE_URL = "https://api.together.ai"
# A current OpenAI model with no announced shutdown date (bot/prices/prices.json); a reasoning model, asked at its
# cheapest effort unless the run says otherwise.
DEFAULT_TEACHER = "gpt-6.2-sol"
# OpenAI's current small embedding model (bot/prices/prices.json): what trainer=dicl embeds inputs with unless a run
# says.
DEFAULT_EMBEDDING_MODEL = "text-embedding-3-small"


class Secret:
    """A credential that never shows itself in repr, str or f-strings; `reveal()` returns the value."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def _secret(raw: str) -> Secret:
    if raw.strip() != raw or not raw:
        raise ValueError("has leading or trailing spaces or is empty (the value is not shown)")
    return Secret(raw)


# The kinds of Slack token by prefix (https://docs.slack.dev/authentication/tokens), and where each one goes.
SLACK_TOKENS = {
    "xoxb-": "a bot token (xoxb-...), which goes in SLACK_BOT_TOKEN",
    "xapp-": "an app-level token (xapp-...), which goes in SLACK_APP_TOKEN",
    "xoxp-": "a user token (xoxp-...): the bot posts as itself, with its bot token (xoxb-...)",
}


def _slack_token(prefix: str) -> Callable[[str], Secret]:
    """A Slack token of one kind; another kind is refused by name, its value not shown."""

    def parse(raw: str) -> Secret:
        secret = _secret(raw)
        wrong = next((kind for start, kind in SLACK_TOKENS.items() if raw.startswith(start) and start != prefix), None)
        if wrong:
            raise ValueError(f"this is {wrong}; this variable takes a {prefix}... token (the value is not shown)")
        return secret

    return parse


def _url(raw: str) -> str:
    if not re.match(r"^https?://[^\s/]+", raw):
        raise ValueError(f"expected an http(s) URL such as https://api.openai.com/v1, got {raw!r}")
    return raw.rstrip("/")


def _together_url(raw: str) -> str:
    """A Together base URL as together-py 3.x wants it: without the /v1 that 2.x and the old docs put at its end."""
    url = _url(raw)
    return url[: -len("/v1")] if url.endswith("/v1") else url


def _project_id(raw: str) -> str | None:
    value = raw.strip()
    if value and not re.match(r"^[A-Za-z0-9_-]+$", value):
        raise ValueError(f"expected a Together project ID such as proj_abc123, got {raw!r}")
    return value or None


def _optional_url(raw: str) -> str | None:
    return _url(raw.strip()) if raw.strip() else None


def _storage(raw: str) -> Path | None:
    """A folder the bot and the Ray cluster both read and write (a shared or mounted file system)."""
    value = raw.strip()
    if not value:
        return None
    if re.match(r"^[a-z][a-z0-9+.-]*://", value) and not value.startswith("file://"):
        raise ValueError(f"object-store URIs are not supported in this version ({value!r}): mount the bucket on the "
                         "bot's machine and the cluster's nodes (s3fs, gcsfuse, ...) and give the folder's path")
    path = Path(value.removeprefix("file://"))
    if not path.is_absolute():
        raise ValueError(f"expected an absolute path the cluster can read too, got {raw!r}")
    return path


def _optional_usd(raw: str) -> Decimal | None:
    if not raw.strip():
        return None
    try:
        value = Decimal(raw.strip())
    except InvalidOperation:
        raise ValueError(f"expected an amount in US dollars such as 2.49, got {raw!r}") from None
    if not value.is_finite() or value < 0:
        raise ValueError(f"expected an amount in US dollars >= 0, got {raw!r}")
    return value


def _trainer(raw: str) -> str:
    name = raw.strip().lower()
    if name not in TRAINERS:
        raise ValueError(f"expected one of {', '.join(TRAINERS)}, got {raw!r}")
    return name


MAX_SETTING = 1_000_000_000  # the bound of a whole-number variable that has no natural one
MAX_PORT = 65_535
DAY_SECONDS = Decimal(86_400)


def _whole(minimum: int, maximum: int = MAX_SETTING) -> Callable[[str], int]:
    return lambda raw: numbers.whole(raw, minimum, maximum)


def _seconds(raw: str) -> float:
    return numbers.number(raw, DAY_SECONDS, "30")


def _bool(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"expected true or false, got {raw!r}")


_SLACK_USER = re.compile(r"^[UW][A-Z0-9]{2,}$")
_SLACK_GROUP = re.compile(r"^S[A-Z0-9]{2,}$")


def _approvers(raw: str) -> tuple[str, ...]:
    ids = tuple(part.strip() for part in raw.replace(" ", ",").split(",") if part.strip())
    bad = [i for i in ids if not (_SLACK_USER.match(i) or _SLACK_GROUP.match(i))]
    if bad:
        raise ValueError(
            f"expected Slack user IDs (U..., W...) or user-group IDs (S...), comma-separated; "
            f"not an ID: {', '.join(bad)}"
        )
    return ids


def _model(raw: str) -> str:
    if not raw.strip() or any(c.isspace() for c in raw.strip()):
        raise ValueError(f"expected a model name such as gpt-4o, got {raw!r}")
    return raw.strip()


def _log_level(raw: str) -> str:
    level = raw.strip().upper()
    if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        raise ValueError(f"expected DEBUG, INFO, WARNING or ERROR, got {raw!r}")
    return level


@dataclass(frozen=True)
class Variable:
    name: str
    attr: str
    default: str | None
    parse: Callable[[str], Any]
    help: str
    secret: bool = False


VARIABLES: tuple[Variable, ...] = (
    Variable("SLACK_BOT_TOKEN", "slack_bot_token", None, _slack_token("xoxb-"),
             "Bot token (xoxb-...) from the app's OAuth page.", secret=True),
    Variable("SLACK_APP_TOKEN", "slack_app_token", None, _slack_token("xapp-"),
             "App-level token (xapp-...) with connections:write; when set, `run` uses Socket Mode.",
             secret=True),
    Variable("SLACK_SIGNING_SECRET", "slack_signing_secret", None, _secret,
             "Signing secret from the app's Basic Information page; verifies HTTP requests.", secret=True),
    Variable("OPENAI_API_KEY", "openai_api_key", None, _secret,
             "Key for the OpenAI-compatible provider (inference and OpenAI fine-tuning).", secret=True),
    Variable("OPENAI_BASE_URL", "openai_base_url", "https://api.openai.com/v1", _url,
             "Any OpenAI-compatible base URL (OpenAI, Azure /openai/v1, vLLM, Ollama, the sandbox)."),
    Variable("DISTILL_DB", "db_path", "./distill.db", Path, "SQLite database file."),
    Variable("DISTILL_DATA_DIR", "data_dir", "./distill-data", Path,
             "Folder for charts, exports and training files."),
    Variable("DISTILL_TEACHER_MODEL", "teacher_model", DEFAULT_TEACHER, _model, "Default teacher model of a new run."),
    Variable("DISTILL_STUDENT_MODEL", "student_model", DEFAULT_STUDENT, _model,
             "Default student (base) model of a new run; with the together trainer, a model Together both "
             "fine-tunes and serves on dedicated hardware."),
    Variable("DISTILL_TRAINER", "trainer", TRAINERS[0], _trainer,
             "Default trainer of a new run: together, openai (which takes no new fine-tuning jobs after "
             "2027-01-06), ray (the team's own GPUs, docs/trainers-ray.md), or dicl (no fine-tuning: the teacher's "
             "nearest examples in the student's prompt)."),
    Variable("DISTILL_APPROVERS", "approvers", "", _approvers,
             "Who may approve spend: Slack user IDs and/or user-group IDs, comma-separated."),
    Variable("DISTILL_MIN_APPROVALS", "min_approvals", "1", _whole(1),
             "Distinct approvers needed for a spending stage."),
    Variable("DISTILL_ALLOW_SELF_APPROVAL", "allow_self_approval", "false", _bool,
             "Whether the requester may approve their own spend."),
    Variable("DISTILL_AUTO_APPROVE_USD", "auto_approve_micro_usd", "0", usd_to_micro,
             "Quotes at or under this amount (USD) start without asking."),
    Variable("DISTILL_APPROVAL_HOURS", "approval_hours", "24", _whole(1),
             "Hours after which a pending or granted approval expires."),
    Variable("DISTILL_POLL_SECONDS", "poll_seconds", "30", _seconds,
             "How often the scheduler polls training jobs and batches."),
    Variable("DISTILL_MAX_CSV_MB", "max_csv_mb", "100", _whole(1), "Largest CSV accepted, in MB."),
    Variable("DISTILL_MAX_ROWS", "max_rows", "500000", _whole(1), "Most data rows accepted in a CSV."),
    Variable("DISTILL_PROCESS_OVER_MB", "process_over_mb", "5", _whole(0),
             "CSVs over this size (MB) are loaded, checked and estimated in a separate process, so the bot "
             "stays responsive; 0 sends every one there."),
    Variable("DISTILL_RETENTION_DAYS", "retention_days", "0", _whole(0),
             "Days after a run finished (done, cancelled or failed) before the scheduler deletes its data as "
             "/distill delete does; 0 keeps it."),
    Variable("DISTILL_PRICES", "prices_path", "", lambda raw: Path(raw) if raw else None,
             "Optional JSON price table that overrides or extends the bundled one."),
    Variable("DISTILL_RPM", "requests_per_minute", "500", _whole(1),
             "Requests per minute the collector may send (lowered further by the provider's headers)."),
    Variable("DISTILL_TPM", "tokens_per_minute", "2000000", _whole(1),
             "Tokens per minute the collector may send, each request counted as its prompt plus its "
             "max_completion_tokens as OpenAI counts it (lowered further by the provider's headers)."),
    Variable("DISTILL_CONCURRENCY", "concurrency", "16", _whole(1), "Most requests in flight at once."),
    Variable("DISTILL_STORE_COMPLETIONS", "store_completions", "true", _bool,
             "Send store=true with metadata so completions show in the provider's dashboard."),
    Variable("TOGETHER_API_KEY", "together_api_key", None, _secret,
             "Key for Together AI (trainer=together).", secret=True),
    Variable("TOGETHER_BASE_URL", "together_base_url", TOGETHER_BASE_URL, _together_url,
             "Together AI API base URL, without /v1 (a trailing /v1 is dropped); the eval's inference goes to "
             "https://api-inference.together.ai/v1 with the default, else to this URL plus /v1."),
    Variable("TOGETHER_PROJECT_ID", "together_project_id", "", _project_id,
             "Together project (proj_...) that owns the eval's dedicated endpoints; when empty, the API key's "
             "project from GET /v3/whoami."),
    Variable("RAY_ADDRESS", "ray_address", "", _optional_url,
             "trainer=ray: the Ray cluster's dashboard URL, which serves the Jobs REST API (http://HEAD:8265)."),
    Variable("DISTILL_RAY_STORAGE", "ray_storage", "", _storage,
             "trainer=ray: an absolute path to a folder the bot and every Ray node share (NFS or a mounted bucket); "
             "training files, adapters and manifests go there."),
    Variable("DISTILL_RAY_GPUS", "ray_gpus", "1", _whole(0),
             "trainer=ray: GPUs each training or serving job asks Ray for (0 runs on CPU, billed as one device)."),
    Variable("DISTILL_GPU_HOUR_USD", "gpu_hour_usd", "", _optional_usd,
             "trainer=ray: what one GPU hour costs the team, in USD; training and serving are priced by GPU time."),
    Variable("DISTILL_SERVE_BASE_URL", "serve_base_url", "", _optional_url,
             "trainer=ray: an OpenAI-compatible server the team runs for the student (vLLM with --enable-lora and "
             "runtime LoRA loading); when empty, the bot serves it as a Ray job for the eval and stops it after."),
    Variable("PORT", "port", "3000", _whole(1, MAX_PORT), "HTTP port of `distill-bot run` when not in Socket Mode."),
    Variable("LOG_LEVEL", "log_level", "INFO", _log_level, "DEBUG, INFO, WARNING or ERROR."),
)


@dataclass(frozen=True)
class Settings:
    slack_bot_token: Secret | None = None
    slack_app_token: Secret | None = None
    slack_signing_secret: Secret | None = None
    openai_api_key: Secret | None = None
    openai_base_url: str = "https://api.openai.com/v1"
    db_path: Path = Path("./distill.db")
    data_dir: Path = Path("./distill-data")
    teacher_model: str = DEFAULT_TEACHER
    student_model: str = DEFAULT_STUDENT
    trainer: str = TRAINERS[0]
    approvers: tuple[str, ...] = ()
    min_approvals: int = 1
    allow_self_approval: bool = False
    auto_approve_micro_usd: int = 0
    approval_hours: int = 24
    poll_seconds: float = 30.0
    max_csv_mb: int = 100
    max_rows: int = 500_000
    process_over_mb: int = 5
    retention_days: int = 0
    prices_path: Path | None = None
    requests_per_minute: int = 500
    tokens_per_minute: int = 2_000_000
    concurrency: int = 16
    store_completions: bool = True
    together_api_key: Secret | None = None
    together_base_url: str = TOGETHER_BASE_URL
    together_project_id: str | None = None
    ray_address: str | None = None
    ray_storage: Path | None = None
    ray_gpus: int = 1
    gpu_hour_usd: Decimal | None = None
    serve_base_url: str | None = None
    port: int = 3000
    log_level: str = "INFO"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Parse every variable; raise one ConfigError listing every bad value by name."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        problems: list[str] = []
        for var in VARIABLES:
            raw = env.get(var.name)
            if raw is None or (raw == "" and var.secret):
                raw = var.default
            if raw is None:
                values[var.attr] = None
                continue
            try:
                values[var.attr] = var.parse(raw)
            except ValueError as exc:
                problems.append(f"{var.name}: {exc}")
        if problems:
            raise ConfigError("Bad configuration:\n" + "\n".join(f"  {p}" for p in problems))
        return cls(**values)

    @property
    def max_csv_bytes(self) -> int:
        return self.max_csv_mb * 1024 * 1024

    @property
    def process_over_bytes(self) -> int:
        return self.process_over_mb * 1024 * 1024

    def require(self, *names: str, hints: Mapping[str, str] | None = None) -> None:
        """Raise a ConfigError naming every listed variable that is not set, with the hint of each (a sentence
        keyed by variable) that is missing."""
        by_name = {v.name: v for v in VARIABLES}
        missing = [n for n in names if getattr(self, by_name[n].attr) is None]
        if missing:
            said = [(hints or {}).get(name) for name in missing]
            raise ConfigError(
                "Missing configuration: " + ", ".join(missing)
                + ". Set them in the environment (see the README's configuration table)."
                + "".join(f" {hint}" for hint in said if hint)
            )
