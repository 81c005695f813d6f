"""Uploaded CSVs: decoded, checked, parsed into a pandas frame, profiled and stored.

Every problem is a DatasetError that names what is wrong and what to do. Parsing uses Python's csv module
(it reports the physical line of a ragged row, which pandas cannot for short rows) and builds the pandas
frame from its records: every column is text, and an empty field is missing (None). Values are kept as they
are in the file (no stripping, and "NA" or "null" are values, not missing).

All of this is CPU work: on the event loop, call `load_and_profile`, which runs it in a thread.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

from bot.core.errors import DatasetError
from bot.prompts.templates import MAX_ENUM_VALUES

if TYPE_CHECKING:
    from storage import Storage
    from storage.datasets import Dataset

DELIMITERS = (",", ";", "\t", "|")
_DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
_SNIFF_CHARS = 64 * 1024
_BINARY_SIGNATURES = {
    b"PK\x03\x04": "a zip archive or an Excel .xlsx workbook",
    b"\xd0\xcf\x11\xe0": "an old Excel .xls workbook",
    b"\x1f\x8b": "a gzip archive",
    b"%PDF": "a PDF",
    b"\x89PNG": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image",
    b"SQLite format 3": "a SQLite database",
}
_HTML = re.compile(rb"^\s*(<!doctype html|<html|<head|<body|<\?xml)", re.IGNORECASE)
_NUMBER = re.compile(r"^[-+]?(\d+([.,]\d*)?|[.,]\d+)([eE][-+]?\d+)?$")
_SAVE_AS = "Export it from your spreadsheet as 'CSV UTF-8 (comma delimited)' and upload that"
SAMPLE_CHARS = 60
LABEL_MAX_MEAN_CHARS = 100
# Column names that say "the answer". Without one, the rightmost candidate is taken: datasets put the answer last
# (the bundled tickets' category, the wine cookbook's variety). Counting rows per value instead ranked a column
# with few values first (the tickets' channel: 4 values against the category's 6).
LABEL_NAMES = frozenset({"label", "labels", "class", "category", "target", "y", "intent", "sentiment", "topic", "tag",
                         "outcome", "answer", "gold"})


@dataclass(frozen=True)
class LoadedCsv:
    filename: str
    frame: pd.DataFrame  # object dtype: str values, None where the field is empty
    columns: list[str]
    encoding: str
    delimiter: str
    sha256: str
    size_bytes: int
    warnings: list[str] = field(default_factory=list)

    def rows(self) -> Iterator[dict[str, str | None]]:
        """Each data row as {column: value}, in file order (row_index = position)."""
        for values in self.frame.itertuples(index=False, name=None):
            yield dict(zip(self.columns, values, strict=True))

    def rows_by_index(self) -> dict[int, dict[str, str | None]]:
        return dict(enumerate(self.rows()))


@dataclass(frozen=True)
class ColumnProfile:
    name: str
    non_null: int
    distinct: int
    numeric: bool  # every value is a number
    sample: list[str]  # a few distinct values, shortened


@dataclass(frozen=True)
class DatasetProfile:
    rows: int
    columns: list[ColumnProfile]
    label_candidates: list[str]  # low-cardinality text columns, most plausible first (LABEL_NAMES, then rightmost)
    label_counts: dict[str, dict[str, int]]  # per candidate: label -> rows, most frequent first

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "columns": [column.__dict__ for column in self.columns],
            "label_candidates": list(self.label_candidates),
            "label_counts": {name: dict(counts) for name, counts in self.label_counts.items()},
        }


def load_csv(data: bytes, *, filename: str, max_bytes: int, max_rows: int) -> LoadedCsv:
    """Decode, sniff, parse and check a CSV; raise DatasetError naming the problem and the fix."""
    _check_bytes(data, filename, max_bytes)
    text, encoding, warnings = _decode(data, filename)
    delimiter = _sniff_delimiter(text)
    header, records = _parse(text, delimiter, filename, max_rows)
    columns = _column_names(header, filename, warnings)
    frame = pd.DataFrame(records, columns=columns, dtype=object)
    frame = frame.where(frame != "", None)
    return LoadedCsv(
        filename=filename,
        frame=frame,
        columns=columns,
        encoding=encoding,
        delimiter=delimiter,
        sha256=hashlib.sha256(data).hexdigest(),
        size_bytes=len(data),
        warnings=warnings,
    )


def profile(loaded: LoadedCsv) -> DatasetProfile:
    """Counts, samples and label candidates of each column."""
    frame = loaded.frame
    columns: list[ColumnProfile] = []
    candidates: list[tuple[bool, int, str]] = []
    counts: dict[str, dict[str, int]] = {}
    for position, name in enumerate(loaded.columns):
        values = frame[name].dropna()
        # Most frequent first, ties by value, so the profile is the same on every run.
        distinct = sorted(values.value_counts().items(), key=lambda item: (-item[1], item[0]))
        numeric = _numeric(values)
        sample = [_shorten(value) for value, _ in distinct[:3]]
        columns.append(ColumnProfile(name, len(values), len(distinct), numeric, sample))
        mean_chars = values.str.len().mean() if len(values) else 0
        if (not numeric and 2 <= len(distinct) <= min(MAX_ENUM_VALUES, len(values) // 2)
                and mean_chars <= LABEL_MAX_MEAN_CHARS):
            candidates.append((name.strip().lower() not in LABEL_NAMES, -position, name))
            counts[name] = {str(label): int(n) for label, n in distinct}
    ranked = [name for *_, name in sorted(candidates)]
    return DatasetProfile(len(frame), columns, ranked, {name: counts[name] for name in ranked})


async def load_and_profile(
    data: bytes, *, filename: str, max_bytes: int, max_rows: int
) -> tuple[LoadedCsv, DatasetProfile]:
    """load_csv and profile, in a worker thread."""

    def work() -> tuple[LoadedCsv, DatasetProfile]:
        loaded = load_csv(data, filename=filename, max_bytes=max_bytes, max_rows=max_rows)
        return loaded, profile(loaded)

    return await asyncio.to_thread(work)


async def store_dataset(storage: Storage, loaded: LoadedCsv, profile: DatasetProfile) -> Dataset:
    """Store the dataset and its rows; the same bytes uploaded again return the dataset stored first."""
    return await storage.datasets.create(
        sha256=loaded.sha256,
        filename=loaded.filename,
        size_bytes=loaded.size_bytes,
        encoding=loaded.encoding,
        delimiter=loaded.delimiter,
        columns=loaded.columns,
        rows=loaded.rows(),
        profile=profile.to_dict(),
    )


def _numeric(values: pd.Series) -> bool:
    """Whether every value is a number. A sample is tried first: a text column fails it at once, instead of
    converting every row (one long call that holds the GIL, stalling the event loop, on a large file)."""
    if not len(values):
        return False
    sample = values.iloc[:200]
    if not pd.to_numeric(sample, errors="coerce").notna().all():
        return False
    return bool(pd.to_numeric(values, errors="coerce").notna().all())


def _shorten(value: str) -> str:
    value = " ".join(value.split())
    return value if len(value) <= SAMPLE_CHARS else value[: SAMPLE_CHARS - 1] + "…"


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB"


def check_size(size_bytes: int, filename: str, max_bytes: int) -> None:
    """Refuse a file over DISTILL_MAX_CSV_MB before reading it."""
    if size_bytes > max_bytes:
        raise DatasetError(
            f"{filename} is {_megabytes(size_bytes)}, over the {_megabytes(max_bytes)} limit (DISTILL_MAX_CSV_MB). "
            "Upload a sample of the rows, or raise DISTILL_MAX_CSV_MB."
        )


def _check_bytes(data: bytes, filename: str, max_bytes: int) -> None:
    check_size(len(data), filename, max_bytes)
    if not data.lstrip(b"\xef\xbb\xbf").strip():
        raise DatasetError(f"{filename} is empty. Upload a CSV with a header row and at least one data row.")
    for signature, kind in _BINARY_SIGNATURES.items():
        if data.startswith(signature):
            raise DatasetError(f"{filename} is {kind}, not a CSV. {_SAVE_AS}.")
    if b"\x00" in data[:_SNIFF_CHARS]:
        raise DatasetError(f"{filename} looks like a binary file (it contains NUL bytes), not a CSV. {_SAVE_AS}.")
    if _HTML.match(data[:1024].lstrip(b"\xef\xbb\xbf")):
        raise DatasetError(
            f"{filename} is an HTML page, not a CSV (often a login or error page saved instead of the file). "
            "Download the CSV itself and upload it again."
        )


def _decode(data: bytes, filename: str) -> tuple[str, str, list[str]]:
    if data.startswith(b"\xef\xbb\xbf"):
        try:
            return data[3:].decode("utf-8"), "utf-8-sig", []
        except UnicodeDecodeError as exc:
            raise DatasetError(f"{filename} starts with a UTF-8 mark but is not UTF-8 at byte {exc.start + 3}. "
                               f"{_SAVE_AS}.") from exc
    try:
        return data.decode("utf-8"), "utf-8", []
    except UnicodeDecodeError as exc:
        position = exc.start
    try:
        text = data.decode("cp1252")
    except UnicodeDecodeError:
        raise DatasetError(f"{filename} is neither UTF-8 nor Windows-1252 text (bad byte at {position}). "
                           f"{_SAVE_AS}.") from None
    return text, "cp1252", [
        f"{filename} is not valid UTF-8 (first bad byte at offset {position}), so it was read as Windows-1252 "
        "(cp1252). Check that accented characters look right, or save the file as CSV UTF-8."
    ]


def _sniff_delimiter(text: str) -> str:
    """The delimiter (comma, semicolon, tab or pipe) that splits the first lines into the most even columns."""
    sample = text[:_SNIFF_CHARS]
    if len(text) > _SNIFF_CHARS and "\n" in sample:
        sample = sample[: sample.rindex("\n")]
    best, best_score = ",", (0.0, 1)
    for delimiter in DELIMITERS:
        try:
            widths = [len(r) for r in csv.reader(io.StringIO(sample, newline=""), delimiter=delimiter) if r]
        except csv.Error:
            continue
        if not widths or widths[0] < 2:
            continue
        score = (sum(w == widths[0] for w in widths) / len(widths), widths[0])
        if score > best_score:
            best, best_score = delimiter, score
    return best


def _parse(text: str, delimiter: str, filename: str, max_rows: int) -> tuple[list[str], list[list[str]]]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    records: list[list[str]] = []
    header: list[str] | None = None
    line = 1  # physical line where the next record starts
    try:
        for record in reader:
            start, line = line, reader.line_num + 1
            if not record:
                continue  # a blank line
            if header is None:
                header = record
                continue
            if len(record) != len(header) and line - start > 1 and "\n" in record[-1]:
                raise DatasetError(
                    f"{filename}: a double quote opened on line {start} is never closed, so the value runs on "
                    f"to line {line - 1}. Close the quote, or double it (\"\") where it is part of the text."
                )
            if len(record) != len(header):
                raise DatasetError(
                    f"{filename}: line {start} has {len(record)} fields but the header has {len(header)} "
                    f"({_DELIMITER_NAMES[delimiter]}-separated). Quote values that contain the delimiter "
                    'with double quotes ("a, b"), or fix that line.'
                )
            records.append(record)
            if len(records) > max_rows:
                raise DatasetError(
                    f"{filename} has more than {max_rows:,} data rows (DISTILL_MAX_ROWS). Upload a sample of "
                    "the rows, or raise DISTILL_MAX_ROWS."
                )
    except csv.Error as exc:
        if "field larger than field limit" in str(exc):
            raise DatasetError(
                f"{filename}: line {line} has a value longer than {csv.field_size_limit():,} characters. Shorten "
                "it: a prompt that long would not fit a model's context anyway."
            ) from exc
        raise DatasetError(
            f"{filename}: cannot parse line {line} ({exc}). This is often a quote that is never closed; "
            "check that line."
        ) from exc
    if header is None:
        raise DatasetError(f"{filename} is empty. Upload a CSV with a header row and at least one data row.")
    if not records:
        raise DatasetError(f"{filename} has a header row but no data rows. Add the examples below the header.")
    return header, records


# Invisible characters that make two names look the same (zero-width space, joiners, word joiner, BOM).
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff"))


def _column_names(header: list[str], filename: str, warnings: list[str]) -> list[str]:
    visible = [name.translate(_INVISIBLE) for name in header]
    if visible != header:
        warnings.append("Invisible characters (zero-width spaces or joiners) were removed from column names.")
    names = [name.strip() for name in visible]
    if all(not name for name in names) or any(_NUMBER.match(name) for name in names):
        example = next((n for n in names if _NUMBER.match(n)), "")
        why = f" ('{example}' is a number)" if example else ""
        raise DatasetError(
            f"The first row of {filename} looks like data, not a header{why}. Add a first row that names "
            "each column, for example: description,variety"
        )
    if names != visible:
        warnings.append("Spaces around column names were removed.")
    unnamed = [i for i, name in enumerate(names) if not name]
    for i in unnamed:
        names[i] = f"Unnamed: {i}"
    if unnamed:
        warnings.append(f"Columns without a name were called {', '.join(names[i] for i in unnamed)}.")
    seen: dict[str, int] = {}
    for name in names:
        seen[name] = seen.get(name, 0) + 1
    duplicates = [name for name, n in seen.items() if n > 1]
    if duplicates:
        raise DatasetError(
            f"{filename} has duplicate column names: {', '.join(duplicates)}. Rename them so each column "
            "has its own name."
        )
    return names
