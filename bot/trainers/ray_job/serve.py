"""Serve a base model and LoRA adapters OpenAI-compatibly, as a Ray job (trainer=ray's deploy step). Stands alone
(see __init__.py).

Where vLLM is installed (a GPU cluster) this runs `vllm serve BASE --enable-lora --lora-modules NAME=PATH`, the
production path. Elsewhere (CPU, the tests) it serves with transformers' generate and PEFT: `/v1/chat/completions`
(no streaming, n=1, greedy at temperature 0), `/v1/models`, `/health`, and vLLM's `/v1/load_lora_adapter` and
`/v1/unload_lora_adapter`. This fallback does not enforce `response_format`: an answer that is not the schema's JSON
is what the model wrote, and the bot counts it invalid (vLLM's structured outputs constrain it). Either way it first
prints `DISTILL_SERVING {"url": ".../v1"}` with the address it answers at.

Usage: python serve.py --base MODEL_OR_PATH [--adapter NAME=PATH ...] [--host 0.0.0.0] [--port 0]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import shutil
import socket
import threading
import time
import uuid


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", required=True)
    parser.add_argument("--adapter", action="append", default=[], metavar="NAME=PATH")
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=0, help="0: a free port")
    parser.add_argument("--max-lora-rank", type=int, default=64)
    return parser.parse_args()


def free_port(host: str) -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def announced_host(host: str) -> str:
    """The address others reach this server at: the node's own when it listens on every interface."""
    if host not in ("0.0.0.0", "::"):
        return host
    return os.environ.get("RAY_NODE_IP_ADDRESS") or socket.gethostbyname(socket.gethostname())


def announce(host: str, port: int) -> None:
    url = f"http://{announced_host(host)}:{port}/v1"
    print(f"DISTILL_SERVING {json.dumps({'url': url})}", flush=True)


def exec_vllm(args: argparse.Namespace, port: int) -> None:
    command = ["vllm", "serve", args.base, "--host", args.host, "--port", str(port)]
    if args.adapter:
        command += ["--enable-lora", "--max-lora-rank", str(args.max_lora_rank), "--lora-modules", *args.adapter]
    os.environ.setdefault("VLLM_ALLOW_RUNTIME_LORA_UPDATING", "True")
    os.execvp(command[0], command)


class Models:
    """The base model with its adapters; one generation at a time (a lock), off the event loop."""

    def __init__(self, base: str) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.base = base
        self.tokenizer = AutoTokenizer.from_pretrained(base)
        self.model = AutoModelForCausalLM.from_pretrained(base)
        self.model.eval()
        self.adapters: dict[str, str] = {}
        self.lock = threading.Lock()

    def load(self, name: str, path: str) -> None:
        from peft import PeftModel

        with self.lock:
            if not self.adapters:
                self.model = PeftModel.from_pretrained(self.model, path, adapter_name=name)
            else:
                self.model.load_adapter(path, adapter_name=name)
            self.model.eval()
            self.adapters[name] = path

    def unload(self, name: str) -> None:
        with self.lock:
            self.model.delete_adapter(name)
            del self.adapters[name]

    def names(self) -> list[str]:
        return [self.base, *self.adapters]

    def generate(self, name: str, messages: list, max_tokens: int, temperature: float, seed: int | None) -> tuple:
        import contextlib

        import torch

        encoded = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                                     return_dict=True)
        options = {"max_new_tokens": max_tokens, "do_sample": temperature > 0,
                   "pad_token_id": self.tokenizer.pad_token_id, "eos_token_id": self.tokenizer.eos_token_id}
        if temperature > 0:
            options["temperature"] = temperature
        with self.lock, torch.no_grad():
            if seed is not None:
                torch.manual_seed(seed)
            if name == self.base:
                scope = self.model.disable_adapter() if self.adapters else contextlib.nullcontext()
            else:
                self.model.set_adapter(name)
                scope = contextlib.nullcontext()
            with scope:
                output = self.model.generate(**encoded, **options)[0, encoded["input_ids"].shape[1]:].tolist()
        finish = "stop" if self.tokenizer.eos_token_id in output else "length"
        if finish == "stop":
            output = output[: output.index(self.tokenizer.eos_token_id)]
        text = self.tokenizer.decode(output, skip_special_tokens=True)
        return text, finish, int(encoded["input_ids"].shape[1]), len(output)


def error(status: int, message: str, param: str | None = None, kind: str = "invalid_request_error"):
    from aiohttp import web

    return web.json_response({"error": {"message": message, "type": kind, "param": param, "code": None}},
                             status=status)


def application(models: Models):
    from aiohttp import web

    async def chat(request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            return error(400, "The body is not JSON.")
        name = body.get("model")
        if name not in models.names():
            return error(404, f"The model `{name}` does not exist. Served: {', '.join(models.names())}.", "model",
                         "NotFoundError")
        if not isinstance(body.get("messages"), list) or not body["messages"]:
            return error(400, "messages must be a non-empty list.", "messages")
        if body.get("stream"):
            return error(400, "This server does not stream; send stream=false.", "stream")
        if body.get("n", 1) != 1:
            return error(400, "This server answers n=1 only.", "n")
        max_tokens = int(body.get("max_completion_tokens") or body.get("max_tokens") or 256)
        temperature = float(body.get("temperature") or 0.0)
        text, finish, prompt, completion = await asyncio.to_thread(
            models.generate, name, body["messages"], max_tokens, temperature, body.get("seed"))
        return web.json_response({
            "id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion", "created": int(time.time()),
            "model": name, "system_fingerprint": None,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text, "refusal": None},
                         "finish_reason": finish, "logprobs": None}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}})

    async def list_models(request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [
            {"id": name, "object": "model", "created": 0, "owned_by": "distill-bot",
             "root": models.adapters.get(name, models.base), "parent": models.base if name in models.adapters else None}
            for name in models.names()]})

    async def load(request: web.Request) -> web.Response:
        body = await request.json()
        name, path = body.get("lora_name"), body.get("lora_path")
        if not name or not path:
            return error(400, "lora_name and lora_path are required.")
        if name in models.adapters:
            return error(400, f"The lora adapter '{name}' has already been loaded.")
        try:
            await asyncio.to_thread(models.load, name, path)
        except (OSError, ValueError) as exc:
            return error(400, f"Could not load adapter {name} from {path}: {exc}")
        return web.Response(text=f"Success: LoRA adapter '{name}' added successfully.")

    async def unload(request: web.Request) -> web.Response:
        name = (await request.json()).get("lora_name")
        if name not in models.adapters:
            return error(404, f"The lora adapter '{name}' cannot be found.", kind="NotFoundError")
        await asyncio.to_thread(models.unload, name)
        return web.Response(text=f"Success: LoRA adapter '{name}' removed successfully.")

    async def health(request: web.Request) -> web.Response:
        return web.Response(text="")

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    app.router.add_get("/v1/models", list_models)
    app.router.add_post("/v1/load_lora_adapter", load)
    app.router.add_post("/v1/unload_lora_adapter", unload)
    app.router.add_get("/health", health)
    return app


def main() -> None:
    args = arguments()
    from train import check_base  # the sibling job script: the same early refusal of a missing base path

    check_base(args.base)
    port = args.port or free_port(args.host)
    if shutil.which("vllm") and importlib.util.find_spec("vllm") is not None:
        announce(args.host, port)
        exec_vllm(args, port)
    from aiohttp import web

    models = Models(args.base)
    for pair in args.adapter:
        name, _, path = pair.partition("=")
        models.load(name, path)
    announce(args.host, port)
    web.run_app(application(models), host=args.host, port=port, print=None)


if __name__ == "__main__":
    main()
