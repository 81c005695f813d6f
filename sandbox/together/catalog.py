"""Together's model catalog as the sandbox serves it: which models exist, which can be fine-tuned, and on what
hardware a dedicated endpoint can run them.

Routes, with the shapes of Together's API reference (docs.together.ai/reference) and its SDK
(github.com/togethercomputer/together-py, src/together/types):
- `GET /v1/models`: a bare JSON array of model objects (not OpenAI's {"object": "list"} envelope).
- `GET /v1/fine-tunes/models/supported`: {"models": [names], "detailed_models": [{"name", "parent_model"}]}.
- `GET /v1/fine-tunes/models/limits?model_name=`: FinetuneModelLimits; 404 for a model Together does not train.
- `GET /v1/hardware?model=`: {"object": "list", "data": [hardware]} with `pricing.cents_per_minute`.

Every base model answers chat completions serverless here (a simplification: Together serves only some
of them serverless). A fine-tuned model answers only while a dedicated endpoint for it is STARTED, under the
endpoint's name, as on Together. The catalog is the OpenAI sandbox's ModelCatalog with Together's models,
so the same ChatEngine answers: small models (< 30B parameters) with the student classifier, large ones with
the teacher's, fine-tuned ones with the naive Bayes learned from their training file.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from aiohttp import web

from sandbox.openai.errors import APIError, bad_request
from sandbox.openai.models import FineTunedModel, Model, ModelCatalog

OWNER = "distill-sandbox"  # the account name Together puts in front of output models and endpoints
TEACHER_MIN_BILLION_PARAMS = 30
CREATED = 1721692800  # 2024-07-23, Llama 3.1's release: one fixed `created` for every listed model


@dataclass(frozen=True)
class Hardware:
    id: str
    gpu_type: str
    gpu_memory_gb: int
    cents_per_minute: float  # Together's dedicated endpoint list price per minute of uptime

    def as_json(self, available: bool = True) -> dict:
        return {
            "object": "hardware", "id": self.id,
            "pricing": {"cents_per_minute": self.cents_per_minute},
            "specs": {"gpu_type": self.gpu_type, "gpu_link": "sxm", "gpu_memory": self.gpu_memory_gb, "gpu_count": 1},
            "updated_at": "2026-11-01T00:00:00Z",
            "availability": {"status": "available" if available else "unavailable"},
        }


# docs.together.ai/docs/dedicated-endpoints/overview ("Pricing"): $3.99/hour for 1x H100 80GB and $5.49 for
# 1x H200 141GB, billed per minute of uptime.
H100 = Hardware("1x_nvidia_h100_80gb_sxm", "h100", 80, 399 / 60)
H200 = Hardware("1x_nvidia_h200_141gb_sxm", "h200", 141, 549 / 60)


@dataclass(frozen=True)
class TogetherModel:
    id: str
    billion_params: float
    context_length: int
    fine_tunable: bool
    full_training: bool = False  # whether Together also offers full fine-tuning (LoRA is always offered)
    hardware: tuple[Hardware, ...] = (H100, H200)

    @property
    def organization(self) -> str:
        return self.id.split("/", 1)[0]

    def as_json(self) -> dict:
        return {"id": self.id, "object": "model", "created": CREATED, "type": "chat",
                "display_name": self.id.split("/", 1)[-1].replace("-", " "), "organization": self.organization,
                "context_length": self.context_length}

    def limits(self) -> dict:
        """FinetuneModelLimits (together-py src/together/types/finetune_model_limits.py)."""
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


# Names from Together's fine-tuning models list (docs.together.ai/docs/fine-tuning-models) and serverless catalog.
MODELS: tuple[TogetherModel, ...] = (
    TogetherModel("meta-llama/Meta-Llama-3.1-8B-Instruct-Reference", 8.0, 131_072, True, full_training=True),
    TogetherModel("Qwen/Qwen2.5-7B-Instruct", 7.6, 32_768, True, full_training=True),
    TogetherModel("meta-llama/Meta-Llama-3.1-70B-Instruct-Reference", 70.6, 131_072, True, hardware=(H200,)),
    TogetherModel("meta-llama/Llama-3.3-70B-Instruct-Turbo", 70.6, 131_072, False),
    TogetherModel("deepseek-ai/DeepSeek-V3", 671.0, 131_072, False),
)


class TogetherCatalog(ModelCatalog):
    """The OpenAI sandbox's catalog with Together's models; fine-tuned ones come and go with their endpoints."""

    def __init__(self, deployed: Callable[[], Iterable[FineTunedModel]], used: Callable[[str], None],
                 today: Callable[[], dt.date]) -> None:
        super().__init__(finetuned=deployed, today=today)
        self.models = {m.id: m for m in MODELS}
        self.used = used

    def get(self, model_id: str) -> Model:
        """The model a chat completion asked for (404 like any unknown one); its endpoint counts as in use."""
        model = super().get(model_id)
        self.used(model_id)
        return model

    def base_models(self) -> list[Model]:
        return [Model(m.id, m.id, m.id, CREATED, m.organization, None,
                      "teacher" if m.billion_params >= TEACHER_MIN_BILLION_PARAMS else "student")
                for m in MODELS]

    def trainable(self, model_id: str) -> TogetherModel:
        model = self.models.get(model_id)
        if model is None or not model.fine_tunable:
            raise bad_request(f"Model {model_id} is not supported for fine-tuning. Supported models: "
                              f"{', '.join(self.fine_tunable())} (GET /v1/fine-tunes/models/supported).",
                              param="model")
        return model

    def fine_tunable(self) -> list[str]:
        return [m.id for m in MODELS if m.fine_tunable]

    def routes(self, parent_of: Callable[[str], str | None]) -> list[web.RouteDef]:
        """`parent_of` names the base model of a fine-tuned output model (None: not one of ours)."""

        async def list_models(request: web.Request) -> web.Response:
            return web.json_response([m.as_json() for m in MODELS])

        async def supported(request: web.Request) -> web.Response:
            return web.json_response({"models": self.fine_tunable(), "detailed_models": [
                {"name": name, "parent_model": name} for name in self.fine_tunable()]})

        async def limits(request: web.Request) -> web.Response:
            name = request.query.get("model_name", "")
            try:
                return web.json_response(self.trainable(name).limits())
            except APIError as exc:
                exc.status = 404
                raise

        async def hardware(request: web.Request) -> web.Response:
            name = request.query.get("model")
            if name is None:
                offered = sorted({h for m in MODELS for h in m.hardware}, key=lambda h: h.id)
            else:
                model = self.models.get(parent_of(name) or name)
                if model is None:
                    raise APIError(404, f"Model {name} is not available for dedicated endpoints.", param="model")
                offered = list(model.hardware)
            return web.json_response({"object": "list", "data": [h.as_json() for h in offered]})

        return [web.get("/v1/models", list_models), web.get("/v1/fine-tunes/models/supported", supported),
                web.get("/v1/fine-tunes/models/limits", limits), web.get("/v1/hardware", hardware)]


def iso(at: float) -> str:
    """Together writes timestamps as ISO 8601 strings ("2023-05-17T17:35:45.123Z"), not Unix seconds."""
    return dt.datetime.fromtimestamp(at, dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
