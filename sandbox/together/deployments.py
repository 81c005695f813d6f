"""Together's v2 dedicated model inference (notes §1.2, §1.3): an endpoint is the stable inference name, a deployment
binds one model and one config (hardware) to it, and the endpoint's `trafficSplit` says which deployments take its
requests. Routes, camelCase JSON as together-py 3.1.1 sends and reads it (types/endpoint.py, endpoint_deployment.py,
deployment_status.py):

- `POST|GET /v2/projects/{projectId}/endpoints`, `GET|PATCH|DELETE .../endpoints/{id}` (PATCH with
  `?updateMask=trafficSplit` and an `etag`; an endpoint with deployments cannot be deleted: delete them first).
- `POST|GET .../endpoints/{endpointId}/deployments`, `GET|PATCH|DELETE .../deployments/{id}` (PATCH
  `?updateMask=autoscaling` with minReplicas = maxReplicas = 0 stops it; a deployment is deleted only once it has
  no running replica: STOPPED or FAILED).

A deployment is DEPLOYMENT_STATE_PROVISIONING for 2 simulated minutes, then READY (or FAILED with
`fail_deployments_with` as its status message); scaled to zero it is STOPPING for 10 simulated seconds, then
STOPPED; with `inactiveTimeout` (0 = off, else 30-1440 minutes, as the SDK documents) it stops after that many
minutes without a request. A READY deployment answers chat completions only while it has a weight in its
endpoint's trafficSplit; otherwise the endpoint's name gets 503 `routing_error` (SKILLS api-reference.md). Only the
ready replicas bill, per started minute, at the hardware's priceCentsPerHour (docs DMI pricing: provisioning and
replicas that are not ready are not billed); `bills` records each deleted deployment's minutes and cents.

The error body of these v2 routes is not in the sources read; the sandbox answers them in the same
{"error": {"message", "type", "param", "code"}} shape as the rest of Together's API.
"""

from __future__ import annotations

import math
import re
import secrets
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from sandbox.openai.clock import JobClock
from sandbox.openai.errors import APIError, bad_request, not_found
from sandbox.openai.models import FineTunedModel
from sandbox.openai.params import json_body, required_str
from sandbox.together.catalog import (
    PROJECT_ID,
    PROJECT_SLUG,
    Hardware,
    TogetherCatalog,
    TogetherModel,
    cursor_page,
    iso,
)
from sandbox.together.finetunes import FineTunes, Job

PROVISIONING_SECONDS = 120.0
STOPPING_SECONDS = 10.0
INACTIVE_TIMEOUT_MINUTES = (30, 1440)
_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
READY, FAILED, STOPPED = "DEPLOYMENT_STATE_READY", "DEPLOYMENT_STATE_FAILED", "DEPLOYMENT_STATE_STOPPED"


def _precondition(message: str, param: str | None = None) -> APIError:
    return APIError(400, message, type="failed_precondition", param=param, code="failed_precondition")


@dataclass
class Endpoint:
    id: str
    name: str  # bare; the inference name is "<project_slug>/<name>"
    visibility: str
    created_at: float
    updated_at: float
    traffic_split: list[dict[str, Any]] = field(default_factory=list)
    version: int = 1
    deleted: bool = False

    @property
    def full_name(self) -> str:
        return f"{PROJECT_SLUG}/{self.name}"

    @property
    def etag(self) -> str:
        return f"W/\"{self.id}-{self.version}\""

    def weight(self, deployment_id: str) -> float:
        return sum(float(e["deploymentId"] == deployment_id and e["weight"]) for e in self.traffic_split)


@dataclass
class Deployment:
    id: str
    name: str  # bare, within its endpoint
    endpoint: Endpoint
    job: Job
    hardware: Hardware
    config: str
    replicas: int  # minReplicas = maxReplicas here
    inactive_timeout: int  # minutes; 0 = never stops by itself
    created_at: float
    ready_at: float
    fail_message: str | None = None
    last_used: float = 0.0
    stop_requested_at: float | None = None
    deleted_at: float | None = None
    version: int = 1

    @property
    def full_name(self) -> str:
        return f"{self.endpoint.full_name}/{self.name}"

    def idle_stop_at(self, clock: JobClock) -> float | None:
        if not self.inactive_timeout:
            return None
        return clock.later(max(self.ready_at, self.last_used), self.inactive_timeout * 60)

    def ready_end(self, now: float, clock: JobClock) -> float:
        """When its replicas stop being ready (or now, while they still are)."""
        ends = [now, *(t for t in (self.stop_requested_at, self.idle_stop_at(clock), self.deleted_at) if t)]
        return min(ends)

    def state(self, now: float, clock: JobClock) -> str:
        if self.fail_message is not None and now >= self.ready_at:
            return FAILED
        if self.stop_requested_at is not None:
            stopped = now >= clock.later(self.stop_requested_at, STOPPING_SECONDS)
            return STOPPED if stopped else "DEPLOYMENT_STATE_STOPPING"
        if now < self.ready_at:
            return "DEPLOYMENT_STATE_PROVISIONING"
        idle = self.idle_stop_at(clock)
        return STOPPED if idle is not None and now >= idle else READY

    def billed_minutes(self, now: float, clock: JobClock) -> int:
        """Started minutes of ready replicas, from READY to the end of readiness, times the replicas."""
        if self.fail_message is not None:
            return 0
        seconds = (self.ready_end(now, clock) - self.ready_at) * clock.speed
        return math.ceil(seconds / 60) * self.replicas if seconds > 0 else 0

    def status(self, now: float, clock: JobClock) -> dict[str, Any]:
        state = self.state(now, clock)
        ready = self.replicas if state == READY else 0
        message = {READY: "All replicas are ready.", FAILED: self.fail_message,
                   "DEPLOYMENT_STATE_PROVISIONING": "Provisioning replicas.", STOPPED: "The deployment is stopped.",
                   "DEPLOYMENT_STATE_STOPPING": "Stopping replicas."}[state]
        return {"state": state, "message": message, "readyReplicas": ready,
                "scheduledReplicas": self.replicas if state in (READY, "DEPLOYMENT_STATE_PROVISIONING") else 0,
                "details": {"region": [{"region": "us-central-1", "readyReplicas": ready,
                                        "scheduledReplicas": ready}]}}

    def updated_at(self, now: float, clock: JobClock) -> float:
        changes = [self.created_at, self.ready_at, self.stop_requested_at, self.idle_stop_at(clock)]
        return max(t for t in changes if t is not None and t <= now)

    def autoscaling(self) -> dict[str, Any]:
        replicas = 0 if self.stop_requested_at is not None else self.replicas
        return {"minReplicas": replicas, "maxReplicas": replicas}

    def as_json(self, now: float, clock: JobClock) -> dict[str, Any]:
        model = self.job.model_resource
        return {
            "id": self.id, "name": self.full_name, "endpointId": self.endpoint.id, "projectId": PROJECT_ID,
            "model": model, "modelId": model.rsplit("/", 1)[-1], "modelRevisionId": "",
            "config": self.config, "configId": self.config.rsplit("/", 1)[-1], "hardware": self.hardware.id,
            "autoscaling": self.autoscaling(), "status": self.status(now, clock),
            "desiredReplicas": self.autoscaling()["maxReplicas"], "trafficMode": "TRAFFIC_MODE_LIVE",
            "estimatedEffectiveTrafficShare": 1.0 if self.endpoint.weight(self.id) else 0.0,
            "inactiveTimeout": self.inactive_timeout, "etag": f"W/\"{self.id}-{self.version}\"",
            "createdAt": iso(self.created_at), "updatedAt": iso(self.updated_at(now, clock)),
        }

    def summary(self, now: float, clock: JobClock) -> dict[str, Any]:
        full = self.as_json(now, clock)
        keys = ("id", "name", "model", "modelId", "hardware", "autoscaling", "desiredReplicas", "trafficMode",
                "estimatedEffectiveTrafficShare", "createdAt")
        return {**{k: full[k] for k in keys}, "state": full["status"]["state"],
                "readyReplicas": full["status"]["readyReplicas"]}


@dataclass(frozen=True)
class Bill:
    deployment_id: str
    endpoint_id: str
    hardware: str
    minutes: int  # started minutes of ready replicas, replicas counted
    cents: float


class Deployments:
    def __init__(self, fine_tunes: FineTunes, catalog: TogetherCatalog, clock: JobClock,
                 fail_deployments_with: str | None = None) -> None:
        self.fine_tunes = fine_tunes
        self.catalog = catalog
        self.clock = clock
        self.fail_deployments_with = fail_deployments_with
        self.bills: list[Bill] = []
        self._endpoints: dict[str, Endpoint] = {}
        self._deployments: dict[str, Deployment] = {}

    def routes(self) -> list[web.RouteDef]:
        endpoints = "/v2/projects/{project_id}/endpoints"
        deployments = endpoints + "/{endpoint_id}/deployments"
        return [
            web.post(endpoints, self.create_endpoint), web.get(endpoints, self.list_endpoints),
            web.get(endpoints + "/{endpoint_id}", self.retrieve_endpoint),
            web.patch(endpoints + "/{endpoint_id}", self.update_endpoint),
            web.delete(endpoints + "/{endpoint_id}", self.delete_endpoint),
            web.post(deployments, self.create_deployment), web.get(deployments, self.list_deployments),
            web.get(deployments + "/{deployment_id}", self.retrieve_deployment),
            web.patch(deployments + "/{deployment_id}", self.update_deployment),
            web.delete(deployments + "/{deployment_id}", self.delete_deployment),
        ]

    # ----- what the rest of the sandbox asks -------------------------------------------------------------

    def live(self) -> list[Deployment]:
        return [d for d in self._deployments.values() if d.deleted_at is None]

    def endpoints(self) -> list[Endpoint]:
        return [e for e in self._endpoints.values() if not e.deleted]

    def routed(self, model: str) -> FineTunedModel | None:
        """The fine-tuned model behind an endpoint's (or a deployment's) name, its idle timer reset; None when the
        name is no endpoint's; 503 routing_error when no ready deployment of it has a weight in the traffic split."""
        now = self.clock.now()
        for endpoint in self.endpoints():
            mine = [d for d in self.live() if d.endpoint is endpoint]
            if model == endpoint.full_name:
                candidates = [d for d in mine if endpoint.weight(d.id) > 0 and d.state(now, self.clock) == READY]
            elif model in (d.full_name for d in mine):
                candidates = [d for d in mine if d.full_name == model and d.state(now, self.clock) == READY]
            else:
                continue
            if not candidates:
                raise APIError(503, f"Endpoint {endpoint.full_name} has no ready deployment that takes traffic: its "
                               "trafficSplit must give a READY deployment a weight above 0.", type="routing_error",
                               code="routing_error")
            chosen = candidates[0]
            chosen.last_used = now
            return FineTunedModel(model, chosen.job.model.id, int(chosen.ready_at), chosen.job.classifier)
        return None

    def base_of(self, resource: str) -> TogetherModel | None:
        job = self.fine_tunes.completed(resource)
        return job.model if job else None

    # ----- endpoints -------------------------------------------------------------------------------------

    def _project(self, request: web.Request) -> None:
        project = request.match_info["project_id"]
        if project != PROJECT_ID:
            raise not_found(f"Project {project} not found.", param="projectId")

    def _endpoint(self, request: web.Request) -> Endpoint:
        self._project(request)
        endpoint = self._endpoints.get(request.match_info["endpoint_id"])
        if endpoint is None or endpoint.deleted:
            raise not_found(f"Endpoint {request.match_info['endpoint_id']} not found.", param="endpointId")
        return endpoint

    def _endpoint_json(self, endpoint: Endpoint) -> dict[str, Any]:
        now = self.clock.now()
        return {"id": endpoint.id, "name": endpoint.full_name, "projectId": PROJECT_ID,
                "endpointType": "ENDPOINT_TYPE_DEDICATED", "visibility": endpoint.visibility,
                "deployments": [d.summary(now, self.clock) for d in self.live() if d.endpoint is endpoint],
                "trafficSplit": [dict(e) for e in endpoint.traffic_split], "etag": endpoint.etag,
                "createdAt": iso(endpoint.created_at), "updatedAt": iso(endpoint.updated_at)}

    async def create_endpoint(self, request: web.Request) -> web.Response:
        self._project(request)
        body = await json_body(request)
        name = required_str(body, "name")
        slug, _, bare = name.rpartition("/")
        if slug and slug != PROJECT_SLUG:
            raise bad_request(f"Endpoint name {name!r} names project {slug!r}, not this project ({PROJECT_SLUG}).",
                              param="name")
        if not _NAME.match(bare):
            raise bad_request(f"Invalid endpoint name {bare!r}: use 1-63 lowercase letters, digits and '-', starting "
                              "and ending with a letter or digit.", param="name")
        if any(e.name == bare for e in self.endpoints()):
            raise APIError(409, f"An endpoint named {PROJECT_SLUG}/{bare} already exists.", type="already_exists",
                           param="name", code="already_exists")
        visibility = body.get("visibility", "VISIBILITY_PRIVATE")
        if visibility not in ("VISIBILITY_PRIVATE", "VISIBILITY_INTERNAL"):
            raise bad_request(f"Invalid 'visibility': {visibility!r}.", param="visibility")
        now = self.clock.now()
        endpoint = Endpoint(f"ep_{secrets.token_hex(10)}", bare, visibility, now, now)
        self._endpoints[endpoint.id] = endpoint
        return web.json_response(self._endpoint_json(endpoint))

    async def list_endpoints(self, request: web.Request) -> web.Response:
        self._project(request)
        return web.json_response(cursor_page(request, [self._endpoint_json(e) for e in self.endpoints()]))

    async def retrieve_endpoint(self, request: web.Request) -> web.Response:
        return web.json_response(self._endpoint_json(self._endpoint(request)))

    async def update_endpoint(self, request: web.Request) -> web.Response:
        endpoint = self._endpoint(request)
        body = await json_body(request)
        if body.get("etag") and body["etag"] != endpoint.etag:
            raise APIError(409, f"Endpoint {endpoint.id} changed since it was read (etag {body['etag']} is not "
                           f"{endpoint.etag}). Read it again and retry.", type="aborted", param="etag", code="aborted")
        mask = request.query.get("updateMask")
        fields = mask.split(",") if mask else [k for k in ("trafficSplit", "visibility") if k in body]
        for name in fields:
            if name == "trafficSplit":
                endpoint.traffic_split = self._traffic_split(endpoint, body.get("trafficSplit"))
            elif name == "visibility":
                endpoint.visibility = str(body.get("visibility"))
            else:
                raise bad_request(f"Field {name!r} cannot be updated here (updateMask).", param="updateMask")
        endpoint.version += 1
        endpoint.updated_at = self.clock.now()
        return web.json_response(self._endpoint_json(endpoint))

    def _traffic_split(self, endpoint: Endpoint, split: Any) -> list[dict[str, Any]]:
        if not isinstance(split, list):
            raise bad_request("'trafficSplit' must be a list of {deploymentId, weight}.", param="trafficSplit")
        mine = {d.id for d in self.live() if d.endpoint is endpoint}
        entries = []
        for entry in split:
            deployment, weight = (entry.get("deploymentId"), entry.get("weight")) if isinstance(entry, dict) else (
                None, None)
            if deployment not in mine:
                raise bad_request(f"Deployment {deployment!r} is not a deployment of endpoint {endpoint.id}.",
                                  param="trafficSplit")
            if isinstance(weight, bool) or not isinstance(weight, int | float) or not 0 <= weight < math.inf:
                raise bad_request(f"Invalid weight {weight!r} for {deployment}: a finite number >= 0.",
                                  param="trafficSplit")
            entries.append({"deploymentId": deployment, "weight": weight})
        return entries

    async def delete_endpoint(self, request: web.Request) -> web.Response:
        endpoint = self._endpoint(request)
        children = [d.id for d in self.live() if d.endpoint is endpoint]
        if children:
            raise _precondition(f"Endpoint {endpoint.id} still has deployments ({', '.join(children)}); delete them "
                                "first.")
        endpoint.deleted = True
        return web.json_response({})

    # ----- deployments -----------------------------------------------------------------------------------

    def _deployment(self, request: web.Request) -> Deployment:
        endpoint = self._endpoint(request)
        deployment = self._deployments.get(request.match_info["deployment_id"])
        if deployment is None or deployment.deleted_at is not None or deployment.endpoint is not endpoint:
            raise not_found(f"Deployment {request.match_info['deployment_id']} not found.", param="deploymentId")
        return deployment

    async def create_deployment(self, request: web.Request) -> web.Response:
        endpoint = self._endpoint(request)
        body = await json_body(request)
        name = required_str(body, "name")
        if not _NAME.match(name):
            raise bad_request(f"Invalid deployment name {name!r}: use lowercase letters, digits and '-'.", param="name")
        if any(d.name == name and d.endpoint is endpoint for d in self.live()):
            raise APIError(409, f"Endpoint {endpoint.full_name} already has a deployment named {name}.",
                           type="already_exists", param="name", code="already_exists")
        resource = required_str(body, "model")
        job = self.fine_tunes.completed(resource)
        if job is None:
            raise not_found(f"Model {resource} not found in project {PROJECT_ID}.", param="model")
        found = self.catalog.config(required_str(body, "config"))
        if found is None or found[0] is not job.model:
            compatible = ", ".join(job.model.config_path(h) for h in job.model.dedicated) or "none"
            raise bad_request(f"Config {body['config']} is not compatible with model {resource} (a fine-tune of "
                              f"{job.model.id}). Compatible configs: {compatible}.", param="config")
        replicas = self._replicas(body.get("autoscaling"))
        timeout = body.get("inactiveTimeout", 0)
        low, high = INACTIVE_TIMEOUT_MINUTES
        if isinstance(timeout, bool) or not isinstance(timeout, int) or not (timeout == 0 or low <= timeout <= high):
            raise bad_request(f"Invalid 'inactiveTimeout': {timeout!r}. Use 0 to disable automatic stopping, "
                              f"otherwise {low} through {high} minutes.", param="inactiveTimeout")
        now = self.clock.now()
        deployment = Deployment(f"dep_{secrets.token_hex(10)}", name, endpoint, job, found[1], body["config"],
                                replicas, timeout, now, self.clock.later(now, PROVISIONING_SECONDS),
                                self.fail_deployments_with)
        if request.query.get("validateOnly") != "true":
            self._deployments[deployment.id] = deployment
        return web.json_response(deployment.as_json(now, self.clock))

    @staticmethod
    def _replicas(autoscaling: Any) -> int:
        if not isinstance(autoscaling, dict) or not isinstance(autoscaling.get("minReplicas"), int):
            raise bad_request("Missing required parameter 'autoscaling': {\"minReplicas\": 1, \"maxReplicas\": 1}.",
                              param="autoscaling")
        low, high = autoscaling["minReplicas"], autoscaling.get("maxReplicas", autoscaling["minReplicas"])
        if not isinstance(high, int) or low < 0 or high < low:
            raise bad_request(f"Invalid replicas: minReplicas {low}, maxReplicas {high}.", param="autoscaling")
        if low == 0 and high > 0:
            raise bad_request("minReplicas 0 with maxReplicas above 0 is not supported; use 0/0 to stop.",
                              param="autoscaling")
        if low != high:
            raise bad_request("The sandbox runs a fixed number of replicas: set minReplicas = maxReplicas.",
                              param="autoscaling")
        return low

    async def list_deployments(self, request: web.Request) -> web.Response:
        endpoint = self._endpoint(request)
        now = self.clock.now()
        return web.json_response(cursor_page(request, [d.as_json(now, self.clock) for d in self.live()
                                                 if d.endpoint is endpoint]))

    async def retrieve_deployment(self, request: web.Request) -> web.Response:
        return web.json_response(self._deployment(request).as_json(self.clock.now(), self.clock))

    async def update_deployment(self, request: web.Request) -> web.Response:
        deployment = self._deployment(request)
        body = await json_body(request)
        mask = request.query.get("updateMask")
        if (mask or "autoscaling") != "autoscaling":
            raise bad_request(f"The sandbox updates only 'autoscaling' (updateMask {mask!r}).", param="updateMask")
        replicas = self._replicas(body.get("autoscaling"))
        now = self.clock.now()
        if replicas == 0 and deployment.stop_requested_at is None:
            deployment.stop_requested_at = now
        elif replicas:
            raise bad_request("The sandbox can only stop a deployment (0/0), not resize it.", param="autoscaling")
        deployment.version += 1
        return web.json_response(deployment.as_json(now, self.clock))

    async def delete_deployment(self, request: web.Request) -> web.Response:
        deployment = self._deployment(request)
        now = self.clock.now()
        state = deployment.state(now, self.clock)
        if state not in (STOPPED, FAILED):
            raise _precondition(f"Deployment {deployment.id} is {state} with running replicas; scale it to zero "
                                "(autoscaling minReplicas = maxReplicas = 0) and delete it once it is STOPPED.")
        deployment.deleted_at = now
        endpoint = deployment.endpoint
        endpoint.traffic_split = [e for e in endpoint.traffic_split if e["deploymentId"] != deployment.id]
        minutes = deployment.billed_minutes(now, self.clock)
        self.bills.append(Bill(deployment.id, endpoint.id, deployment.hardware.id, minutes,
                               minutes * deployment.hardware.cents_per_hour / 60))
        return web.json_response({})
