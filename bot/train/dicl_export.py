"""What a trainer=dicl run hands the team for use outside the bot: the index file and the request to send.

The file (dicl-index.json) holds everything a request needs: the student, the embedding model, k, the system
prompt, the template the rows were rendered with, the request's fields (response_format, max_completion_tokens,
reasoning_effort or temperature as the bot sent them) and the examples: each row's input, the teacher's answer
as the assistant wrote it, and the input's embedding (little-endian float32, base64, as OpenAI's API sends it
with encoding_format=base64). The snippet embeds a new input, takes the k nearest examples by cosine (the
stored vectors are unit length) and sends them, most similar last, before the input.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bot.spec.settings import RunSpec

FILENAME = "dicl-index.json"


def index_document(spec: RunSpec, template: str, examples: Sequence[tuple[int, str, str]], vectors: np.ndarray,
                   request: Mapping[str, Any]) -> dict[str, Any]:
    """The file's content. `examples`: (dataset row, input, answer) in the order of `vectors`' rows."""
    return {
        "model": spec.student,
        "embedding_model": spec.embedding_model,
        "k": min(spec.k, len(examples)),
        "system": spec.system,
        "template": template,
        "request": dict(request),
        "examples": [{"row": row, "input": text, "output": answer,
                      "embedding": base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode("ascii")}
                     for (row, text, answer), vector in zip(examples, vectors, strict=True)],
    }


async def write_index(folder: Path, document: Mapping[str, Any]) -> Path:
    path = folder / FILENAME

    def write() -> None:
        folder.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(document, ensure_ascii=False, indent=1), encoding="utf-8")

    await asyncio.to_thread(write)
    return path


def usage_snippet() -> list[str]:
    """Python that answers like the distilled model from the file in the thread (openai and numpy installed)."""
    return [
        "import base64, json",
        "import numpy as np",
        "from openai import OpenAI",
        "",
        f'index = json.load(open("{FILENAME}"))',
        'examples = index["examples"]',
        'vectors = np.stack([np.frombuffer(base64.b64decode(e["embedding"]), "<f4") for e in examples])',
        "client = OpenAI()",
        "",
        "def answer(user_prompt):  # the row rendered with index['template']",
        '    query = client.embeddings.create(model=index["embedding_model"], input=user_prompt).data[0].embedding',
        '    nearest = np.argsort(vectors @ np.asarray(query, "f4"))[len(examples) - index["k"]:]  # most similar last',
        '    messages = [{"role": "system", "content": index["system"]}] if index["system"] else []',
        "    for i in nearest:",
        '        messages += [{"role": "user", "content": examples[i]["input"]},',
        '                     {"role": "assistant", "content": examples[i]["output"]}]',
        '    messages.append({"role": "user", "content": user_prompt})',
        '    return client.chat.completions.create(model=index["model"], messages=messages, **index["request"])',
    ]
