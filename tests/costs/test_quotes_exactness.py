"""The fast estimator equals encoding every fully rendered prompt with tiktoken, row by row.

The estimator cuts texts only at "safe" positions (bot/prompts/counting.py explains why those never change
tiktoken's pre-tokens). These tests throw adversarial text at it: accents, emoji with modifiers and
joiners, combining marks, quotes and apostrophes (o200k glues 's to words), digits beside letters and
punctuation, every kind of newline and blank, empty values, and special-token text.
"""

from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.prompts.counting import SAFE_CUT, PromptCounter, safe_cuts
from bot.prompts.encodings import get_encoding
from bot.prompts.templates import Template

ENCODINGS = ("o200k_base", "cl100k_base")
ATOMS = [
    "a", "Z", "é", "É", "ß", "中文", "ка", "e\u0301", "7", "42", "2012", "24.0", "1,000", ".", ",", "!?", "...",
    "'", "'s", "'t", "it's", "DON'T", "’", "\"", "“", "(", ")", "/", "-", "@", "#", "$", "%", "&", "*", "_", "|",
    " ", "  ", "\t", "\n", "\r\n", "\r", "\n\n", " \n", "\x0b", "\x0c", "\u00a0", "\u3000",
    "🍷", "👍🏽", "👨‍👩‍👧", "🇫🇷", "<|endoftext|>", "Pinot Noir", "Gewürztraminer", "Loin de l'Oeil",
]
TEMPLATES = [
    'Review: "{text}". Grown in {region}; {points} points, ${price}.\nPick one of: {choices}.\n',
    "{text}{region}{points}{price}",
    "{text} {region}\n{points}'s {price}!",
    "\n    {region}'{text}' {points}1{price}\t",
    "{{{text}}}:{region}/{points}-{price}...{choices}",
]


def fragment(rng: random.Random, size: int) -> str:
    return "".join(rng.choice(ATOMS) for _ in range(rng.randint(0, size)))


def adversarial_rows(count: int, seed: int) -> list[list[str]]:
    rng = random.Random(seed)
    rows = []
    for _ in range(count):
        row = [fragment(rng, 12) for _ in range(4)]
        if rng.random() < 0.3:  # a repeated value, as in real data
            row[1] = rng.choice(["Alsace", "Bordeaux", "", "Vin de France"])
        rows.append(row)
    return rows


def naive_counts(template: Template, rows: list[list[str]], encoding_name: str) -> list[int]:
    encoding = get_encoding(encoding_name)
    return [len(encoding.encode_ordinary(template.render(row))) for row in rows]


def fast_counts(template: Template, rows: list[list[str]], encoding_name: str) -> list[int]:
    columns = [list(column) for column in zip(*rows, strict=True)] if rows else [[] for _ in template.fields]
    return [int(n) for n in PromptCounter(template, get_encoding(encoding_name)).count(columns, len(rows))]


@pytest.mark.parametrize("encoding_name", ENCODINGS)
@pytest.mark.parametrize("template_text", TEMPLATES)
def test_thousands_of_adversarial_rows_count_exactly(template_text, encoding_name):
    template = Template.parse(template_text).bind_choices(["Rosé", "Pinot Noir", "Loin de l'Oeil"])
    rows = adversarial_rows(1500, seed=len(template_text))
    assert fast_counts(template, rows, encoding_name) == naive_counts(template, rows, encoding_name)


def test_real_wine_rows_count_exactly_in_both_encodings(shared_dir):
    from bot.data.datasets import load_csv
    from bot.prompts.templates import cell_text

    loaded = load_csv((shared_dir / "data" / "wine-reviews-france.csv").read_bytes(), filename="france.csv",
                      max_bytes=1 << 30, max_rows=10**6)
    template = Template.parse("{title} by {winery} ({province}, {region_1}, {region_2}): {description} "
                              "{points} points, {price}. {taster_twitter_handle}")
    rows = [[cell_text(row[name]) for name in template.fields] for row in loaded.rows()]
    for encoding_name in ENCODINGS:
        assert fast_counts(template, rows, encoding_name) == naive_counts(template, rows, encoding_name)


def test_no_rows_and_a_template_without_fields():
    assert fast_counts(Template.parse("{a} b"), [], "o200k_base") == []
    template = Template.parse("Only constant text, 42 times.")
    assert fast_counts(template, [[], []], "o200k_base") == naive_counts(template, [[], []], "o200k_base")


def test_safe_cuts_are_found_at_both_ends_and_never_between_letters():
    assert safe_cuts("Hello world.") == (5, 11)
    assert safe_cuts("abc") is None and safe_cuts("") is None and safe_cuts("été") is None
    assert safe_cuts("it's") is None  # o200k reads "it's" as one pre-token
    assert safe_cuts("2012Z") == (4, 4)


texts = st.one_of(
    st.lists(st.sampled_from(ATOMS), max_size=12).map("".join),
    st.text(max_size=24),
)


@settings(max_examples=300, deadline=None)
@given(text=texts)
def test_cutting_at_every_safe_position_keeps_the_count(text):
    cuts = [0, *(m.start() for m in SAFE_CUT.finditer(text)), len(text)]
    for name in ENCODINGS:
        encoding = get_encoding(name)
        pieces = sum(len(encoding.encode_ordinary(text[a:b])) for a, b in itertools.pairwise(cuts))
        assert pieces == len(encoding.encode_ordinary(text))


@settings(max_examples=200, deadline=None)
@given(literals=st.lists(texts, min_size=2, max_size=5), data=st.data())
def test_any_template_and_rows_count_like_tiktoken(literals, data):
    fields = len(literals) - 1
    template = Template("", tuple(literals), tuple(f"f{i}" for i in range(fields)))
    rows = data.draw(st.lists(st.lists(texts, min_size=fields, max_size=fields), min_size=1, max_size=6))
    for name in ENCODINGS:
        assert fast_counts(template, rows, name) == naive_counts(template, rows, name)
