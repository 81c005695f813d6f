"""Together's dedicated endpoints, billed per minute: `POST /v1/endpoints`, `GET /v1/endpoints`,
`GET /v1/endpoints/{id}`, `DELETE /v1/endpoints/{id}`.

Shapes from together-py (src/together/resources/endpoints.py, types/dedicated_endpoint.py): the create body
takes model, hardware, autoscaling {min_replicas, max_replicas}, display_name, inactive_timeout (minutes
without requests after which the endpoint stops) and state; the object has id ("endpoint-<uuid>"), name (what
chat completions take as `model`: "<owner>/<model>-<8 hex>"), display_name, model, hardware, type
"dedicated", owner, autoscaling, created_at and state PENDING -> STARTING -> STARTED (or STOPPED).

In simulated seconds an endpoint is PENDING for 5 and STARTING for 60. It bills every started minute from its
creation until it is deleted or stops for inactivity (docs.together.ai/docs/dedicated-endpoints/overview:
"bill per-minute by hardware while the endpoint is running"); `bills` records what each deleted endpoint cost,
so tests can tell that undeploying stops the meter. Only completed fine-tuned output models can be deployed
here; while STARTED the endpoint's name answers chat completions with the job's learned classifier.
"""

from __future__ import annotations

import math
import secrets
import uuid
from dataclasses import dataclass

from aiohttp import web

from sandbox.openai.clock import JobClock
from sandbox.openai.errors import APIError, bad_request, not_found
from sandbox.openai.models import FineTunedModel
from sandbox.openai.params import json_body, required_str
from sandbox.together.catalog import OWNER, Hardware, iso
from sandbox.together.finetunes import FineTunes, Job

PENDING_SECONDS = 5.0
STARTING_SECONDS = 60.0


@dataclass
class Endpoint:
    id: str
    name: str
    display_name: str
    job: Job
    hardware: Hardware
    replicas: dict[str, int]
    inactive_minutes: int | None
    created_at: float
    starting_at: float
    started_at: float
    last_used: float
    deleted_at: float | None = None

    def stops_at(self, clock: JobClock) -> float | None:
        if not self.inactive_minutes:
            return None
        return clock.later(max(self.started_at, self.last_used), self.inactive_minutes * 60)

    def state(self, now: float, clock: JobClock) -> str:
        stops = self.stops_at(clock)
        if stops is not None and now >= stops:
            return "STOPPED"
        if now < self.starting_at:
            return "PENDING"
        return "STARTING" if now < self.started_at else "STARTED"

    def billed_minutes(self, until: float, clock: JobClock) -> int:
        stops = self.stops_at(clock)
        end = min(until, stops) if stops is not None else until
        return math.ceil((end - self.created_at) * clock.speed / 60)

    def as_json(self, now: float, clock: JobClock) -> dict:
        return {"object": "endpoint", "id": self.id, "name": self.name, "display_name": self.display_name,
                "model": self.job.output_name, "hardware": self.hardware.id, "type": "dedicated", "owner": OWNER,
                "state": self.state(now, clock), "autoscaling": dict(self.replicas), "created_at": iso(self.created_at)}


@dataclass(frozen=True)
class Bill:
    endpoint_id: str
    hardware: str
    minutes: int
    cents: float


class Endpoints:
    def __init__(self, fine_tunes: FineTunes, clock: JobClock) -> None:
        self.fine_tunes = fine_tunes
        self.clock = clock
        self.bills: list[Bill] = []
        self._endpoints: dict[str, Endpoint] = {}

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/v1/endpoints", self.create),
            web.get("/v1/endpoints", self.list),
            web.get("/v1/endpoints/{endpoint_id}", self.retrieve),
            web.delete("/v1/endpoints/{endpoint_id}", self.delete),
        ]

    def live(self) -> list[Endpoint]:
        return [e for e in self._endpoints.values() if e.deleted_at is None]

    def deployed(self) -> list[FineTunedModel]:
        """The fine-tuned models that answer now: one per STARTED endpoint, under the endpoint's name."""
        now = self.clock.now()
        return [FineTunedModel(e.name, e.job.model.id, int(e.started_at), e.job.classifier)
                for e in self.live() if e.state(now, self.clock) == "STARTED"]

    def touch(self, model: str) -> None:
        """A request reached `model`: its endpoint's inactivity timer starts again."""
        for endpoint in self.live():
            if endpoint.name == model:
                endpoint.last_used = self.clock.now()

    def parent_of(self, model: str) -> str | None:
        job = self.fine_tunes.completed(model)
        return job.model.id if job else None

    def _endpoint(self, request: web.Request) -> Endpoint:
        endpoint = self._endpoints.get(request.match_info["endpoint_id"])
        if endpoint is None or endpoint.deleted_at is not None:
            raise not_found(f"Endpoint {request.match_info['endpoint_id']} not found.", param="endpoint_id")
        return endpoint

    async def create(self, request: web.Request) -> web.Response:
        body = await json_body(request)
        model = required_str(body, "model")
        job = self.fine_tunes.completed(model)
        if job is None:
            raise APIError(404, f"Model {model} is not available for dedicated endpoints. Deploy the "
                           "model_output_name of a completed fine-tuning job.", param="model")
        hardware = next((h for h in job.model.hardware if h.id == required_str(body, "hardware")), None)
        if hardware is None:
            raise bad_request(f"Hardware {body['hardware']} cannot run {model}. Compatible: "
                              f"{', '.join(h.id for h in job.model.hardware)} (GET /v1/hardware?model=...).",
                              param="hardware")
        replicas = body.get("autoscaling")
        if not isinstance(replicas, dict) or not {"min_replicas", "max_replicas"} <= replicas.keys():
            raise bad_request("Missing required parameter 'autoscaling': {\"min_replicas\": 1, \"max_replicas\": 1}.",
                              param="autoscaling")
        timeout = body.get("inactive_timeout")
        if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, int) or timeout < 0):
            raise bad_request(f"Invalid 'inactive_timeout': {timeout!r}. Expected whole minutes >= 0.",
                              param="inactive_timeout")
        now = self.clock.now()
        starting = self.clock.later(now, PENDING_SECONDS)
        started = self.clock.later(starting, STARTING_SECONDS)
        endpoint = Endpoint(f"endpoint-{uuid.uuid4()}", f"{model}-{secrets.token_hex(4)}",
                            str(body.get("display_name") or model), job, hardware,
                            {"min_replicas": replicas["min_replicas"], "max_replicas": replicas["max_replicas"]},
                            timeout, now, starting, started, started)
        self._endpoints[endpoint.id] = endpoint
        return web.json_response(endpoint.as_json(now, self.clock))

    async def list(self, request: web.Request) -> web.Response:
        now = self.clock.now()
        return web.json_response({"object": "list", "data": [e.as_json(now, self.clock) for e in self.live()]})

    async def retrieve(self, request: web.Request) -> web.Response:
        return web.json_response(self._endpoint(request).as_json(self.clock.now(), self.clock))

    async def delete(self, request: web.Request) -> web.Response:
        endpoint, now = self._endpoint(request), self.clock.now()
        endpoint.deleted_at = now
        minutes = endpoint.billed_minutes(now, self.clock)
        cents = minutes * endpoint.hardware.cents_per_minute
        self.bills.append(Bill(endpoint.id, endpoint.hardware.id, minutes, cents))
        return web.Response(status=204)
