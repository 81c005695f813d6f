"""`distill-bot sandbox`: serve the OpenAI, Together and Slack stand-ins on 127.0.0.1 until interrupted."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal

from sandbox.openai import OpenAISandbox
from sandbox.slack import SlackSandbox
from sandbox.together import TogetherSandbox


def _model_limit(raw: str) -> tuple[str, int]:
    model, _, limit = raw.partition("=")
    if not model or not limit.isdigit():
        raise argparse.ArgumentTypeError(f"expected MODEL=NUMBER such as gpt-4o=500, got {raw!r}")
    return model, int(limit)


def _model_factor(raw: str) -> tuple[str, float]:
    model, _, factor = raw.partition("=")
    try:
        value = float(factor)
    except ValueError:
        value = -1.0
    if not model or value < 0:
        raise argparse.ArgumentTypeError(f"expected MODEL=FACTOR such as gpt-6.2-sol=50, got {raw!r}")
    return model, value


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--openai-port", type=int, default=0, help="port of the OpenAI stand-in (default: free)")
    parser.add_argument("--slack-port", type=int, default=0, help="port of the Slack stand-in (default: free)")
    parser.add_argument("--together-port", type=int, default=0,
                        help="port of the Together AI stand-in (default: free)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the models' answers and of random faults")
    parser.add_argument("--clock-speed", type=float, default=60.0,
                        help="how much faster fine-tuning jobs and batches run than real time (default 60)")
    parser.add_argument("--rpm", type=_model_limit, action="append", default=[], metavar="MODEL=N",
                        help="requests-per-minute limit of a model (repeatable)")
    parser.add_argument("--tpm", type=_model_limit, action="append", default=[], metavar="MODEL=N",
                        help="tokens-per-minute limit of a model (repeatable)")
    parser.add_argument("--fault-rate", type=float, default=0.0, help="share of requests answered 500/503")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every answer")
    parser.add_argument("--reasoning-scale", type=_model_factor, action="append", default=[], metavar="MODEL=F",
                        help="make a reasoning model think F times as long (repeatable), e.g. gpt-6.2-sol=50")


async def serve(args: argparse.Namespace) -> None:
    openai = OpenAISandbox(seed=args.seed, clock_speed=args.clock_speed, rpm_limits=dict(args.rpm),
                           tpm_limits=dict(args.tpm), fault_rate=args.fault_rate, latency_seconds=args.latency,
                           reasoning_scale=dict(args.reasoning_scale))
    together = TogetherSandbox(seed=args.seed, clock_speed=args.clock_speed)
    slack = SlackSandbox()
    openai_url = await openai.start(host=args.host, port=args.openai_port)
    together_url = await together.start(host=args.host, port=args.together_port)
    slack_url = await slack.start(host=args.host, port=args.slack_port)
    print(f"OpenAI sandbox: {openai_url}  (API key {openai.api_key})", flush=True)
    print(f"Together sandbox: {together_url}  (API key {together.api_key}; TOGETHER_BASE_URL, without /v1 as "
          "together-py 3.x wants it)", flush=True)
    print(f"Slack sandbox:  {slack_url}  (bot token {slack.bot_token}, signing secret {slack.signing_secret})",
          flush=True)
    print("These are local stand-ins with made-up credentials. Press Ctrl-C to stop.", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await slack.stop()
        await together.stop()
        await openai.stop()


def run(args: argparse.Namespace, settings: object) -> int:
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args))
    return 0
