"""Together's model catalog as the sandbox serves it: which models answer serverless and at what price, which can
be fine-tuned (and their limits and training rates), which can be served on dedicated hardware (their deployment
profiles and configs), and that hardware with its hourly price.

Routes, in the shapes of together-py 3.1.1 (PyPI sdist, types/supported_model.py, types/models/config.py,
types/endpoints/inference_instance_type.py, types/finetune_model_limits.py):
- `GET /v1/models`: the serverless catalog, a bare JSON array of model objects (not OpenAI's {"object": "list"}).
- `GET /v1/fine-tunes/models/limits?model_name=`: FinetuneModelLimits; 404 for a model Together does not train.
- `GET /v2/supported-models?product=PRODUCT_SERVERLESS|PRODUCT_DEDICATED|PRODUCT_FINE_TUNING&search=`: the
  catalog, cursor-paginated ({"data", "next_cursor"}), camelCase, each with `products` and `deploymentProfiles`.
- `GET /v2/projects/{projectId}/configs?referenceModel=`: the config revisions that run a model (or a fine-tune of
  it), each with `accelerator_type` / `accelerator_count` selectors.
- `GET /v2/public/inference-instance-types`: the hardware, with `priceCentsPerHour`.

What is in it (research notes of 2026-11-29, docs/research/together.md §1.3, §3.5, §5, and their sources): the
fine-tunable students Qwen/Qwen3.5-9B and -4B, openai/gpt-oss-20b and meta-llama/Meta-Llama-3.1-8B-Instruct-Reference;
the serverless teachers meta-llama/Llama-3.3-70B-Instruct-Turbo and openai/gpt-oss-120b. Two things there are
unconfirmed and modelled one way here: the Llama -Reference base is fine-tunable but has no dedicated deployment
profile (the docs warn that "some models can be fine-tuned but cannot be deployed"), and Qwen/Qwen3.5-4B is not
served serverless (no price for it was found). Small models (< 30B parameters) answer with the OpenAI sandbox's
student classifier, large ones with its teacher's; a fine-tuned one only through a dedicated endpoint
(sandbox/together/deployments.py), with the naive Bayes learned from its training file.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from sandbox.openai.errors import APIError, bad_request
from sandbox.openai.models import FineTunedModel, Model, ModelCatalog

PLATFORM_PROJECT = "proj_togethercomputer"  # owns the public models and configs (their `projectId`)
PROJECT_ID = "proj_sandbox"  # the caller's project (GET /v3/whoami)
PROJECT_SLUG = "distill-sandbox"  # the project's slug: endpoint names are "<slug>/<endpoint>"
OWNER = PROJECT_SLUG  # the account name Together puts in front of output models
TEACHER_MIN_BILLION_PARAMS = 30
CREATED = 1772323200  # 2026-03-01: one fixed creation time for every listed model
CATALOG_UPDATED = "2026-11-01T00:00:00Z"
PAGE_SIZE = 100


@dataclass(frozen=True)
class Hardware:
    id: str  # "1xnvidia-h100-80gb": what a config's selectors name ({count}x{accelerator_type})
    gpu_type: str  # "H100"
    accelerator_type: str  # "nvidia-h100-80gb"
    gpu_memory_gib: int
    cents_per_hour: int  # one ready replica

    def as_json(self) -> dict:
        """InferenceInstanceType."""
        return {"id": self.id, "name": self.id, "description": f"1x NVIDIA {self.gpu_type} {self.gpu_memory_gib}GB",
                "gpuType": self.gpu_type, "gpuCount": 1, "gpuMemoryGib": self.gpu_memory_gib,
                "priceCentsPerHour": self.cents_per_hour,
                "regions": [{"name": "us-central-1", "headroom": {"relation": "RELATION_GTE", "value": 8}}]}


# docs.together.ai dedicated-endpoints pricing (undated snapshots) via the notes §1.3: 1x H100 80GB $3.99/h (a
# 2026-09-09 note read it as a promotion until 2026-09-30, list $5.49: unconfirmed), 1x H200 141GB $5.49/h (another
# snapshot says "contact sales"), 1x B200 180GB $8.99/h (the overview page says $9.95).
H100 = Hardware("1xnvidia-h100-80gb", "H100", "nvidia-h100-80gb", 80, 399)
H200 = Hardware("1xnvidia-h200-141gb", "H200", "nvidia-h200-141gb", 141, 549)
B200 = Hardware("1xnvidia-b200-180gb", "B200", "nvidia-b200-180gb", 180, 899)
HARDWARE = (H100, H200, B200)

# USD per 1M tokens processed by SFT, by size bracket (inclusive upper bound in billions of parameters): the notes
# §3.4 (together.ai/pricing as quoted on 2026-09-09 up to 16B; third-party ranges above, unconfirmed).
TRAINING_RATES = ((16, 0.48, 1.35), (69, 1.50, 4.12), (100, 2.90, 8.00), (math.inf, 9.00, 9.00))
MINIMUM_CHARGE_USD = 4.00  # docs.together.ai/docs/fine-tuning/pricing: "a $4.00 minimum charge"


def _resource_id(prefix: str, text: str) -> str:
    return f"{prefix}_{hashlib.sha256(text.encode()).hexdigest()[:20]}"


@dataclass(frozen=True)
class TogetherModel:
    id: str
    billion_params: float
    context_length: int
    lora: bool  # Together fine-tunes it (LoRA)
    full_training: bool = False  # ... and also full fine-tuning
    serverless: tuple[float, float] | None = None  # USD per 1M input / output tokens on the serverless API
    dedicated: tuple[Hardware, ...] = ()  # the hardware of its deployment profiles; () = no dedicated deployment

    @property
    def organization(self) -> str:
        return self.id.split("/", 1)[0]

    @property
    def resource(self) -> str:
        """Its model resource name, `projects/{project}/models/{modelId}`."""
        return f"projects/{PLATFORM_PROJECT}/models/{_resource_id('ml', self.id)}"

    def config_id(self, hardware: Hardware) -> str:
        return _resource_id("cr", f"{self.id}@{hardware.id}")

    def config_path(self, hardware: Hardware) -> str:
        return f"projects/{PLATFORM_PROJECT}/configs/{self.config_id(hardware)}"

    def products(self) -> list[str]:
        offered = (("PRODUCT_SERVERLESS", self.serverless), ("PRODUCT_DEDICATED", self.dedicated),
                   ("PRODUCT_FINE_TUNING", self.lora))
        return [name for name, available in offered if available]

    def as_json(self) -> dict:
        """A `GET /v1/models` entry (the serverless catalog)."""
        entry = {"id": self.id, "object": "model", "created": CREATED, "type": "chat",
                 "display_name": self.id.split("/", 1)[-1].replace("-", " "), "organization": self.organization,
                 "context_length": self.context_length}
        if self.serverless:
            entry["pricing"] = {"input": self.serverless[0], "output": self.serverless[1]}
        return entry

    def config_json(self, hardware: Hardware, reference: str) -> dict:
        """A Config revision (types/models/config.py) running this model on `hardware`."""
        return {"id": self.config_id(hardware), "projectId": PLATFORM_PROJECT, "referenceModel": reference,
                "referenceModelId": reference.rsplit("/", 1)[-1], "certifications": [],
                "selectors": [{"key": "accelerator_type", "value": hardware.accelerator_type},
                              {"key": "accelerator_count", "value": "1"},
                              {"key": "optimization", "value": "balanced"}]}

    def supported_json(self) -> dict:
        """A SupportedModel (types/supported_model.py)."""
        profiles = [{"profileId": self.config_id(h), "certifiedConfigRevisionId": self.config_id(h),
                     "certifiedModelRevisionId": "", "config": self.config_path(h), "model": self.resource,
                     "modelName": self.id, "gpuType": h.gpu_type, "gpuCount": 1, "parallelism": "TP1",
                     "quantization": "bf16", "performanceBenchmarks": {}, "adapterMode": "ADAPTER_MODE_DISABLED"}
                    for h in self.dedicated]
        entry = {"id": self.resource.rsplit("/", 1)[-1], "name": self.id, "baseModel": self.resource,
                 "baseModelId": self.resource.rsplit("/", 1)[-1], "capabilities": ["CAPABILITY_CHAT"],
                 "createdAt": CATALOG_UPDATED, "updatedAt": CATALOG_UPDATED, "deploymentProfiles": profiles,
                 "displayName": self.id.split("/", 1)[-1], "displayType": "chat", "inputModalities": ["MODALITY_TEXT"],
                 "outputModalities": ["MODALITY_TEXT"], "products": self.products(), "publisher": self.organization,
                 "status": "SUPPORTED_MODEL_STATUS_SUPPORTED", "contextLength": str(self.context_length)}
        if self.serverless:
            entry.update(pricing={"input": self.serverless[0], "output": self.serverless[1]},
                         serverlessEndpoint=self.id)
        return entry

    def limits(self) -> dict:
        """FinetuneModelLimits (together-py 3.1.1 types/finetune_model_limits.py)."""
        batch = {"max_batch_size": 32, "min_batch_size": 8, "max_batch_size_dpo": 16}
        return {
            "model_name": self.id, "max_num_epochs": 20, "max_num_evals": 100, "max_num_checkpoints": 20,
            "min_learning_rate": 1e-6, "max_learning_rate": 1e-2, "default_gradient_accumulation_steps": 1,
            "max_seq_length_sft": self.context_length, "max_seq_length_dpo": self.context_length // 2,
            "min_max_seq_length": 512, "merge_output_lora": True, "supports_vision": False,
            "supports_tools": True, "supports_reasoning": False, "supports_full_training": self.full_training,
            "lora_training": {**batch, "default_rank": 8, "max_rank": 64,
                              "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"]},
            "full_training": batch if self.full_training else None,
        }

    def usd_per_1m_trained(self, full: bool) -> float:
        _, lora, full_rate = next(b for b in TRAINING_RATES if self.billion_params <= b[0])
        return full_rate if full else lora


# The prices of the notes §5 (USD per 1M input / output tokens): Qwen3.5-9B as observed on 2026-09-05 (the spring
# docs said 0.10 / 0.15), gpt-oss-20b 0.05 / 0.20, gpt-oss-120b 0.15 / 0.60 (2026-10-04), Llama 3.3 70B Turbo 1.04.
MODELS: tuple[TogetherModel, ...] = (
    TogetherModel("Qwen/Qwen3.5-9B", 9.0, 32_768, True, full_training=True, serverless=(0.17, 0.25),
                  dedicated=(H100, H200)),
    TogetherModel("Qwen/Qwen3.5-4B", 4.0, 32_768, True, full_training=True, dedicated=(H100,)),
    TogetherModel("openai/gpt-oss-20b", 21.0, 131_072, True, serverless=(0.05, 0.20), dedicated=(H100,)),
    TogetherModel("meta-llama/Meta-Llama-3.1-8B-Instruct-Reference", 8.0, 131_072, True, full_training=True),
    TogetherModel("openai/gpt-oss-120b", 117.0, 65_536, True, serverless=(0.15, 0.60), dedicated=(H200, B200)),
    TogetherModel("meta-llama/Llama-3.3-70B-Instruct-Turbo", 70.6, 131_072, False, serverless=(1.04, 1.04)),
)


class TogetherCatalog(ModelCatalog):
    """The OpenAI sandbox's catalog with Together's serverless models; `routed` answers for a model name that a
    dedicated endpoint serves (the FineTunedModel behind it), raising the service's error when it cannot route."""

    def __init__(self, routed: Callable[[str], FineTunedModel | None], today: Callable[[], dt.date]) -> None:
        super().__init__(today=today)
        self.models = {m.id: m for m in MODELS}
        self.routed = routed

    def get(self, model_id: str) -> Model:
        """The model a chat completion asked for: an endpoint's name (routed to its deployment) or a serverless
        model; 404 like any unknown model otherwise."""
        found = self.routed(model_id)
        if found is not None:
            return Model(found.id, found.id, found.base, found.created, OWNER, None, "fine-tuned", found)
        model = self.models.get(model_id)
        if model is None or model.serverless is None:
            hint = (" It can be fine-tuned, and deployed on a dedicated endpoint, but it is not served serverless."
                    if model is not None else "")
            raise APIError(404, f"Unable to access model {model_id}. Please visit https://api.together.ai/models "
                           f"to view the list of supported models.{hint}", type="invalid_request_error",
                           param="model", code="model_not_available")
        return super().get(model_id)

    def base_models(self) -> list[Model]:
        return [Model(m.id, m.id, m.id, CREATED, m.organization, None,
                      "teacher" if m.billion_params >= TEACHER_MIN_BILLION_PARAMS else "student")
                for m in MODELS if m.serverless]

    def trainable(self, model_id: str) -> TogetherModel:
        model = self.models.get(model_id)
        if model is None or not model.lora:
            raise bad_request(f"Model {model_id} is not supported for fine-tuning. Supported models: "
                              f"{', '.join(m.id for m in MODELS if m.lora)} "
                              "(GET /v2/supported-models?product=PRODUCT_FINE_TUNING).", param="model")
        return model

    def by_resource(self, resource: str) -> TogetherModel | None:
        return next((m for m in MODELS if m.resource == resource.split("/revisions/", 1)[0]), None)

    def hardware(self, hardware_id: str) -> Hardware | None:
        return next((h for h in HARDWARE if h.id == hardware_id), None)

    def config(self, path: str) -> tuple[TogetherModel, Hardware] | None:
        """The (model, hardware) a config revision (`projects/{p}/configs/{id}` or a bare id) runs."""
        config_id = path.rsplit("/", 1)[-1]
        return next(((m, h) for m in MODELS for h in m.dedicated if m.config_id(h) == config_id), None)

    def routes(self, base_of: Callable[[str], TogetherModel | None]) -> list[web.RouteDef]:
        """`base_of` names the base model of one of the project's fine-tuned model resources (None: not ours)."""

        async def list_models(request: web.Request) -> web.Response:
            return web.json_response([m.as_json() for m in MODELS if m.serverless])

        async def limits(request: web.Request) -> web.Response:
            name = request.query.get("model_name", "")
            try:
                return web.json_response(self.trainable(name).limits())
            except APIError as exc:
                exc.status = 404
                raise

        async def supported(request: web.Request) -> web.Response:
            product, search = request.query.get("product"), request.query.get("search", "").lower()
            products = ("PRODUCT_SERVERLESS", "PRODUCT_DEDICATED", "PRODUCT_FINE_TUNING")
            if product is not None and product not in products:
                raise bad_request(f"Invalid 'product': {product!r}. Expected one of {', '.join(products)}.",
                                  param="product")
            matches = [m.supported_json() for m in MODELS
                       if (product is None or product in m.products()) and search in m.id.lower()]
            return web.json_response(cursor_page(request, matches))

        async def configs(request: web.Request) -> web.Response:
            reference = request.query.get("referenceModel") or request.query.get("referenceModelId")
            if not reference:
                raise bad_request("Specify the model with referenceModel (projects/{projectId}/models/{modelId}).",
                                  param="referenceModel")
            path = reference if reference.startswith("projects/") else f"projects/{PLATFORM_PROJECT}/models/{reference}"
            model = self.by_resource(path) or base_of(path)
            found = [model.config_json(h, path) for h in model.dedicated] if model else []
            return web.json_response(cursor_page(request, found))

        async def hardware(request: web.Request) -> web.Response:
            return web.json_response({"object": "list", "data": [h.as_json() for h in HARDWARE], "next_cursor": None})

        return [web.get("/v1/models", list_models), web.get("/v1/fine-tunes/models/limits", limits),
                web.get("/v2/supported-models", supported), web.get("/v2/projects/{project_id}/configs", configs),
                web.get("/v2/public/inference-instance-types", hardware)]


def cursor_page(request: web.Request, items: list[dict]) -> dict:
    """A cursor page ({"data", "next_cursor"}, together-py pagination.py), `after` being the offset handed out."""
    try:
        start = int(request.query.get("after") or 0)
        limit = int(request.query.get("limit") or PAGE_SIZE)
    except ValueError:
        raise bad_request("Invalid 'after' or 'limit': expected whole numbers.", param="after") from None
    chunk = items[start:start + max(1, limit)]
    more = start + len(chunk) < len(items)
    return {"data": chunk, "next_cursor": str(start + len(chunk)) if more else None}


def iso(at: float) -> str:
    """Together writes timestamps as ISO 8601 strings ("2023-05-17T17:35:45.123Z"), not Unix seconds."""
    return dt.datetime.fromtimestamp(at, dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
