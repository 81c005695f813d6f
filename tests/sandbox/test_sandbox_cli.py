"""`distill-bot sandbox` serves both stand-ins, prints where, and stops cleanly on Ctrl-C."""

import asyncio
import re
import signal
import sys
from pathlib import Path

import aiohttp
from openai import AsyncOpenAI
from slack_sdk.web.async_client import AsyncWebClient

ROOT = Path(__file__).resolve().parents[2]


async def test_the_sandbox_command_serves_openai_together_and_slack_until_interrupted():
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "sandbox", "--tpm", "gpt-4o=30000", "--reasoning-scale", "gpt-6.2-sol=50",
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        openai_line = (await asyncio.wait_for(process.stdout.readline(), 60)).decode()
        together_line = (await asyncio.wait_for(process.stdout.readline(), 60)).decode()
        slack_line = (await asyncio.wait_for(process.stdout.readline(), 60)).decode()
        together_url, together_key = re.search(r"(http://127\.0\.0\.1:\d+)\s+\(API key ([^;)]+)[;)]",
                                               together_line).groups()
        openai_url, key = re.search(r"(http://127\.0\.0\.1:\d+/v1)\s+\(API key (\S+)\)", openai_line).groups()
        slack_url, token = re.search(r"(http://127\.0\.0\.1:\d+/api/)\s+\(bot token ([^,]+),", slack_line).groups()

        async with AsyncOpenAI(base_url=openai_url, api_key=key) as client:
            models = [m.id async for m in client.models.list()]
            assert "gpt-4o" in models and "gpt-6.2-sol" in models
            answer = await client.chat.completions.create(
                model="gpt-6.2-sol", messages=[{"role": "user", "content": "hi"}], reasoning_effort="low",
                max_completion_tokens=50_000)
            assert answer.usage.completion_tokens_details.reasoning_tokens > 1_000  # 50 times its usual
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {together_key}"}) as session:
            async with session.get(f"{together_url}/v1/models") as response:  # Together answers a bare JSON list
                assert response.status == 200 and await response.json()
            async with session.get(f"{together_url}/v3/whoami") as response:  # the SDK's paths carry their version
                assert (await response.json())["project"]["slug"] == "distill-sandbox"
        auth = await AsyncWebClient(token=token, base_url=slack_url).auth_test()
        assert auth["ok"] and auth["team_id"]
    finally:
        process.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(process.wait(), 30) == 0
