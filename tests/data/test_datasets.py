"""Loading, checking, profiling and storing uploaded CSVs."""

from __future__ import annotations

import pytest

from bot.core.errors import DatasetError
from bot.data.datasets import load_and_profile, load_csv, profile, store_dataset

MB = 1024 * 1024


def load(data: bytes, *, max_bytes: int = MB, max_rows: int = 1000):
    return load_csv(data, filename="tickets.csv", max_bytes=max_bytes, max_rows=max_rows)


def refused(data: bytes, **limits) -> str:
    with pytest.raises(DatasetError) as caught:
        load(data, **limits)
    return str(caught.value)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", "tickets.csv is empty. Upload a CSV with a header row"),
        (b"\xef\xbb\xbf\r\n  \n", "tickets.csv is empty."),
        (b"text,label\n", "has a header row but no data rows"),
        (b"1,2,3\n4,5,6\n", "looks like data, not a header ('1' is a number). Add a first row that names"),
        (b"text,label,text\nhi,a,b\n", "duplicate column names: text. Rename them"),
        (b"PK\x03\x04\x14\x00\x06\x00", "is a zip archive or an Excel .xlsx workbook, not a CSV. Export it"),
        (b"text,label\nhello\x00world,a\n", "looks like a binary file (it contains NUL bytes)"),
        (b"  <!DOCTYPE html><html><body>Sign in to Slack</body></html>", "is an HTML page, not a CSV"),
        (b"text,label\n\x81\x8d\x90,a\n", "neither UTF-8 nor Windows-1252"),
    ],
    ids=["empty", "blank", "header-only", "no-header", "duplicate-columns", "xlsx", "nul-bytes", "html",
         "undecodable"],
)
def test_bad_files_are_refused_with_a_message_that_names_the_fix(data, expected):
    assert expected in refused(data)


def test_a_row_with_too_many_fields_is_named_by_its_line_counting_multiline_values():
    data = b'text,label\nfine,a\n"two\nlines",b\none,two,three\n'
    message = refused(data)
    assert "line 5 has 3 fields but the header has 2 (comma-separated)" in message
    assert "Quote values that contain the delimiter" in message


def test_a_row_with_too_few_fields_is_named_by_its_line():
    assert "line 3 has 2 fields but the header has 3" in refused(b"a,b,c\n1,2,3\n4,5\n6,7,8\n")


def test_a_file_over_the_size_limit_is_refused_before_parsing():
    message = refused(b"text,label\n" + b"x,a\n" * 400_000, max_bytes=1 * MB)
    assert "over the 1.0 MB limit (DISTILL_MAX_CSV_MB)" in message and "raise DISTILL_MAX_CSV_MB" in message


def test_a_file_with_more_rows_than_allowed_is_refused():
    message = refused(b"text,label\na,x\nb,y\nc,z\n", max_rows=2)
    assert "more than 2 data rows (DISTILL_MAX_ROWS)" in message


def test_utf8_is_read_as_is():
    loaded = load("text,label\nUn vin élégant 🍷,Rosé\n".encode())
    assert loaded.encoding == "utf-8" and loaded.warnings == []
    assert loaded.frame.iloc[0].tolist() == ["Un vin élégant 🍷", "Rosé"]


def test_a_utf8_byte_order_mark_is_not_part_of_the_first_column_name():
    loaded = load("\ufefftext,label\nbonjour,fr\n".encode())
    assert loaded.encoding == "utf-8-sig" and loaded.columns == ["text", "label"]


def test_windows_1252_is_the_fallback_and_says_so():
    loaded = load("text,label\ncafé crème,boisson\n".encode("cp1252"))
    assert loaded.encoding == "cp1252"
    assert loaded.frame.iloc[0, 0] == "café crème"
    assert "read as Windows-1252 (cp1252)" in loaded.warnings[0] and "offset 14" in loaded.warnings[0]


@pytest.mark.parametrize(
    ("text", "delimiter"),
    [
        ("text,label\n\"Fruity; bright, fresh\",Gamay\nDry,Riesling\n", ","),
        ("text;label\nFruity, bright, fresh;Gamay\nDry, mineral;Riesling\n", ";"),
        ("text\tlabel\nFruity, bright; fresh\tGamay\nDry\tRiesling\n", "\t"),
    ],
    ids=["comma", "semicolon", "tab"],
)
def test_the_delimiter_is_sniffed(text, delimiter):
    loaded = load(text.encode())
    assert loaded.delimiter == delimiter
    assert loaded.columns == ["text", "label"]
    assert loaded.frame["label"].tolist() == ["Gamay", "Riesling"]


def test_empty_fields_are_missing_but_words_like_na_are_values():
    loaded = load(b"text,region,label\nA,,x\nB,NA,y\n")
    assert loaded.frame["region"].tolist() == [None, "NA"]


def test_unnamed_and_padded_column_names_are_fixed_with_a_warning():
    loaded = load(b",  text , label\n7,a,x\n")
    assert loaded.columns == ["Unnamed: 0", "text", "label"]
    assert any("Unnamed: 0" in w for w in loaded.warnings) and any("Spaces" in w for w in loaded.warnings)


def test_the_shared_france_file_loads_with_the_counts_its_sources_document(shared_dir):
    data = (shared_dir / "data" / "wine-reviews-france.csv").read_bytes()
    loaded = load_csv(data, filename="wine-reviews-france.csv", max_bytes=100 * MB, max_rows=500_000)
    report = profile(loaded)
    assert len(loaded.frame) == 2998 and loaded.columns[0] == "Unnamed: 0" and loaded.columns[-1] == "winery"
    column = {c.name: c for c in report.columns}
    assert column["variety"].distinct == 69 and column["description"].non_null == 2998
    assert column["price"].non_null == 2998 - 659 and column["price"].numeric
    assert "variety" in report.label_candidates
    assert "description" not in report.label_candidates and "points" not in report.label_candidates
    assert sum(n >= 5 for n in report.label_counts["variety"].values()) == 32


def test_profile_counts_columns_and_ranks_repeating_text_columns_as_labels():
    rows = "".join(f"ticket number {i} about things,{['Billing', 'Access'][i % 2]},{i}\n" for i in range(10))
    report = profile(load(("text,category,id\n" + rows).encode()))
    assert report.rows == 10
    assert [(c.name, c.non_null, c.distinct, c.numeric) for c in report.columns] == [
        ("text", 10, 10, False), ("category", 10, 2, False), ("id", 10, 10, True)]
    assert report.label_candidates == ["category"]
    assert report.label_counts == {"category": {"Access": 5, "Billing": 5}}
    assert report.to_dict()["columns"][1]["sample"] == ["Access", "Billing"]


async def test_load_and_profile_runs_off_the_event_loop_and_returns_both():
    loaded, report = await load_and_profile(b"text,label\na,x\nb,y\n", filename="t.csv", max_bytes=MB, max_rows=10)
    assert loaded.filename == "t.csv" and report.rows == 2


async def test_the_same_bytes_uploaded_twice_are_one_stored_dataset(storage):
    data = b"text,region,label\nA,,x\nB,North,y\n"
    loaded = load(data)
    first = await store_dataset(storage, loaded, profile(loaded))
    again = await store_dataset(storage, load(data), profile(load(data)))
    assert again.id == first.id and first.row_count == 2 and first.delimiter == ","
    assert first.columns == ["text", "region", "label"] and first.profile["rows"] == 2
    assert await storage.datasets.rows(first.id) == {
        0: {"text": "A", "region": None, "label": "x"}, 1: {"text": "B", "region": "North", "label": "y"}}
    other = await store_dataset(storage, load(data + b"C,,z\n"), profile(load(data + b"C,,z\n")))
    assert other.id != first.id
