"""The sandbox's model catalog: real names, aliases resolved to snapshots, shutdown dates, teacher or student,
and what each reasoning model takes.

The dates are OpenAI's published ones (its deprecations page, as of 2026-11-29): gpt-4o, gpt-4o-mini, gpt-4.1
and gpt-4.1-mini (every snapshot, and every fine-tune on them) shut down on 2027-01-14, gpt-5, gpt-5-mini and
gpt-5-nano on 2026-12-11, and gpt-4.1-nano was shut down on 2026-10-23; the gpt-6.x models have none announced.
`GET /v1/models` reports them as `shutdown_date`, and `shutdown_dates` overrides one per model id or family. The
sandbox's clock (the test's pinned day) decides what is past: a model past its shutdown date answers 404 like any
unknown model.

Reasoning models (gpt-6.x, gpt-5) list the reasoning_effort values they take, the one they use when a request
sends none, and their temperature rule: gpt-6.2-* and gpt-6.1-sol refuse temperature outright (they take no effort
`none`), gpt-6.1-terra and gpt-6-luna take it only with effort `none`, gpt-5 only its default of 1 (OpenAI's
models pages and deployment checklist; see bot/prices/prices.json for the sources).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from aiohttp import web

from bot.core.clock import Clock
from sandbox.openai.errors import APIError

GPT4_SHUTDOWN = "2027-01-14"
GPT5_SHUTDOWN = "2026-12-11"
GPT41_NANO_SHUTDOWN = "2026-10-23"
# Families OpenAI lets customers fine-tune (platform.openai.com/docs/guides/fine-tuning, "Which models").
FINE_TUNABLE = frozenset({"gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano"})
# family: (snapshot the alias points to, other snapshots, created, shutdown date). The gpt-6.2 models have no
# dated snapshot; the others' are left out where the sandbox needs none.
_FAMILIES: dict[str, tuple[str, tuple[str, ...], int, str | None]] = {
    "gpt-6.2-astra": ("gpt-6.2-astra", (), 1794873600, None),
    "gpt-6.2-sol": ("gpt-6.2-sol", (), 1794873600, None),
    "gpt-6.1-sol": ("gpt-6.1-sol", (), 1790640000, None),
    "gpt-6.1-terra": ("gpt-6.1-terra", (), 1792972800, None),
    "gpt-6-luna": ("gpt-6-luna", (), 1790035200, None),
    "gpt-4o": ("gpt-4o-2024-08-06", ("gpt-4o-2024-11-20",), 1715367049, GPT4_SHUTDOWN),
    "gpt-4o-mini": ("gpt-4o-mini-2024-07-18", (), 1721172741, GPT4_SHUTDOWN),
    "gpt-4.1": ("gpt-4.1-2025-04-14", (), 1744316542, GPT4_SHUTDOWN),
    "gpt-4.1-mini": ("gpt-4.1-mini-2025-04-14", (), 1744317547, GPT4_SHUTDOWN),
    "gpt-4.1-nano": ("gpt-4.1-nano-2025-04-14", (), 1744321025, GPT41_NANO_SHUTDOWN),
    "gpt-5": ("gpt-5-2025-08-07", (), 1754425777, GPT5_SHUTDOWN),
    "gpt-5-mini": ("gpt-5-mini-2025-08-07", (), 1754425867, GPT5_SHUTDOWN),
    "gpt-5-nano": ("gpt-5-nano-2025-08-07", (), 1754426384, GPT5_SHUTDOWN),
    "text-embedding-3-small": ("text-embedding-3-small", (), 1705948997, None),
    "text-embedding-3-large": ("text-embedding-3-large", (), 1705953180, None),
}
# Students: the small models. gpt-6-luna is OpenAI's smallest current one (the replacement its deprecations page
# names for gpt-4o-mini), which cannot be fine-tuned: the student of trainer=dicl.
_STUDENT = re.compile(r"-(mini|nano|luna)\b")
_EMBEDDING = re.compile(r"^text-embedding-")
_GPT6_EFFORTS = ("low", "medium", "high", "xhigh", "max")
_GPT6_NONE_EFFORTS = ("none", *_GPT6_EFFORTS)
_GPT5_EFFORTS = ("minimal", "low", "medium", "high")


@dataclass(frozen=True)
class Reasoning:
    """What a reasoning model takes: its efforts (cheapest first), the default, and its temperature rule."""

    efforts: tuple[str, ...]
    default: str
    temperature: str  # never | with_effort_none | default_only (only 1, the default, is accepted)


_REASONING = {
    "gpt-6.2-astra": Reasoning(_GPT6_EFFORTS, "medium", "never"),
    "gpt-6.2-sol": Reasoning(_GPT6_EFFORTS, "medium", "never"),
    "gpt-6.1-sol": Reasoning(_GPT6_EFFORTS, "medium", "never"),
    "gpt-6.1-terra": Reasoning(_GPT6_NONE_EFFORTS, "medium", "with_effort_none"),
    "gpt-6-luna": Reasoning(_GPT6_NONE_EFFORTS, "medium", "with_effort_none"),
    "gpt-5": Reasoning(_GPT5_EFFORTS, "medium", "default_only"),
    "gpt-5-mini": Reasoning(_GPT5_EFFORTS, "medium", "default_only"),
    "gpt-5-nano": Reasoning(_GPT5_EFFORTS, "medium", "default_only"),
}


@dataclass(frozen=True)
class FineTunedModel:
    id: str
    base: str  # the snapshot it was trained from
    created: int
    classifier: object  # a LearnedModel (sandbox/openai/learned.py); typed loosely to keep this module free of it


@dataclass(frozen=True)
class Model:
    id: str
    snapshot: str  # what `model` says in answers: aliases resolve to their dated snapshot
    family: str
    created: int
    owned_by: str
    shutdown_date: str | None
    kind: str  # "teacher", "student", "fine-tuned" or "embedding"
    finetuned: FineTunedModel | None = None
    reasoning: Reasoning | None = None  # None: the model does not reason

    def as_json(self) -> dict:
        return {
            "id": self.id,
            "object": "model",
            "created": self.created,
            "owned_by": self.owned_by,
            "shutdown_date": self.shutdown_date,
        }


class ModelCatalog:
    def __init__(
        self,
        shutdown_dates: dict[str, str | None] | None = None,
        finetuned: Callable[[], Iterable[FineTunedModel]] = tuple,
        today: Callable[[], dt.date] | None = None,
    ) -> None:
        self._overrides = dict(shutdown_dates or {})
        self._finetuned = finetuned
        self._today = today or Clock().today

    def set_shutdown_date(self, model: str, date: str | None) -> None:
        """Change a model's (or family's) shutdown date while the sandbox runs, as a provider announcement would."""
        self._overrides[model] = date

    def _shutdown(self, model_id: str, family: str, default: str | None) -> str | None:
        for key in (model_id, family):
            if key in self._overrides:
                return self._overrides[key]
        return default

    def base_models(self) -> list[Model]:
        models = []
        for family, (snapshot, others, created, shutdown) in _FAMILIES.items():
            kind = "embedding" if _EMBEDDING.match(family) else "student" if _STUDENT.search(family) else "teacher"
            for model_id in dict.fromkeys((family, snapshot, *others)):
                models.append(
                    Model(model_id, snapshot if model_id == family else model_id, family, created, "system",
                          self._shutdown(model_id, family, shutdown), kind, reasoning=_REASONING.get(family))
                )
        return models

    def all(self) -> list[Model]:
        bases = {m.id: m for m in self.base_models()}
        models = list(bases.values())
        for ft in self._finetuned():
            base = bases[ft.base]
            shutdown = self._shutdown(ft.id, ft.id, base.shutdown_date)
            models.append(
                Model(ft.id, ft.id, base.family, ft.created, "distill-sandbox", shutdown, "fine-tuned", ft)
            )
        return models

    def find(self, model_id: str) -> Model | None:
        return next((m for m in self.all() if m.id == model_id), None)

    def get(self, model_id: str) -> Model:
        """The model, or OpenAI's 404 when it is unknown or already shut down."""
        model = self.find(model_id)
        if model is None:
            raise APIError(
                404,
                f"The model `{model_id}` does not exist or you do not have access to it.",
                param="model",
                code="model_not_found",
            )
        today = self._today()
        if model.shutdown_date and dt.date.fromisoformat(model.shutdown_date) <= today:
            raise APIError(
                404,
                f"The model `{model_id}` was shut down on {model.shutdown_date} and can no longer be used. "
                "Pick a current model (GET /v1/models lists them with their shutdown dates).",
                param="model",
                code="model_not_found",
            )
        return model


def model_routes(catalog: ModelCatalog) -> list[web.RouteDef]:
    """`GET /v1/models` and `GET /v1/models/{id}`; shut-down models are still listed, with their date."""

    async def list_models(request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [m.as_json() for m in catalog.all()]})

    async def retrieve_model(request: web.Request) -> web.Response:
        model_id = request.match_info["model"]
        model = catalog.find(model_id)
        if model is None:
            raise APIError(404, f"The model `{model_id}` does not exist or you do not have access to it.",
                           param="model", code="model_not_found")
        return web.json_response(model.as_json())

    return [web.get("/v1/models", list_models), web.get("/v1/models/{model}", retrieve_model)]
