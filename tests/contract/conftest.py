"""The Prism mock server for the contract tests: one per session, installed under .cache/prism on first use."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.contract import prism

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def prism_url(shared_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    missing = prism.missing_tools()
    if missing:
        pytest.skip(f"the contract tests need Node.js and npm to run Prism; missing: {', '.join(missing)}")
    cache = REPO / ".cache" / "prism"
    try:
        executable = prism.install(cache)
        spec = prism.prepared_spec(shared_dir / "openai" / "openapi.yaml", cache)
        with prism.running(executable, spec, tmp_path_factory.mktemp("prism") / "prism.log") as url:
            yield url
    except prism.PrismError as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="session")
def spec(shared_dir: Path) -> dict:
    """OpenAI's spec as Prism reads it (prepared once), for checking bodies with jsonschema."""
    path = prism.prepared_spec(shared_dir / "openai" / "openapi.yaml", REPO / ".cache" / "prism")
    return json.loads(path.read_text(encoding="utf-8"))
