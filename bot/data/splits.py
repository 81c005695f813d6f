"""From a dataset and a run spec to the rows each stage will send: checked, filtered, deduplicated, split.

`prepare` is CPU work proportional to the rows (rendering and hashing each prompt): callers on the event
loop run it with asyncio.to_thread.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import operator
import random
import unicodedata
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.core.errors import DatasetError, SpecError
from bot.prompts.answers import CLASSIFY, EXTRACT
from bot.prompts.templates import CHOICES, Template, cell_text, default_template, validate_choices
from bot.spec.settings import MIN_TRAIN_EXAMPLES, RunSpec

MISSING_LABEL = "missing_label"
NOT_A_CHOICE = "not_a_choice"
RARE_LABEL = "rare_label"
MISSING_REFERENCE = "missing_reference"
REFERENCE_NOT_JSON = "reference_not_json"
IN_EVAL_FILE = "in_eval_file"  # a row of the data whose input is also in the separate eval file
EVAL_DUPLICATE = "eval_file_duplicate"
# The row_index of an eval file's row i: apart from the data's own rows (at most DISTILL_MAX_ROWS), so both can be
# a run's rows and answers at once.
EVAL_FILE_ROW_OFFSET = 1_000_000_000


@dataclass(frozen=True)
class PreparedRow:
    row_index: int
    user_prompt: str
    input_hash: str
    gold_label: str | None
    # The rendered value of each template field, in order: what the token counter works from.
    fields: tuple[str, ...] = field(default=(), repr=False, compare=False)


@dataclass(frozen=True)
class PreparedRun:
    template: Template  # with {choices} written in
    choices: tuple[str, ...]
    train: list[PreparedRow]
    eval: list[PreparedRow]
    validation: list[PreparedRow]
    total_rows: int
    left_out: dict[str, int]  # reason -> rows
    rare_labels: dict[str, int]  # label -> rows, for labels under min_per_label
    duplicates: int  # rows dropped because their normalized prompt was already used
    overlap: int  # prompts in both train and eval (always 0; reported as proof)
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The summary a quote or a Slack message shows (counts, not rows)."""
        return {
            "choices": list(self.choices),
            "total_rows": self.total_rows,
            "train": len(self.train),
            "eval": len(self.eval),
            "validation": len(self.validation),
            "left_out": dict(self.left_out),
            "rare_labels": dict(self.rare_labels),
            "duplicates": self.duplicates,
            "overlap": self.overlap,
            "notes": list(self.notes),
        }


def normalize_input(text: str) -> str:
    """Case, Unicode form and whitespace folded, so trivially different copies of a prompt hash alike."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def input_hash(text: str) -> str:
    return hashlib.sha256(normalize_input(text).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class EvalFile:
    """A separate test set: its rows are the eval split (row_index offset by EVAL_FILE_ROW_OFFSET)."""

    filename: str
    columns: Sequence[str]
    rows: Mapping[int, Mapping[str, Any]]


def prepare(spec: RunSpec, columns: Sequence[str], rows: Mapping[int, Mapping[str, Any]],
            eval_file: EvalFile | None = None) -> PreparedRun:
    """Check the spec against the columns, keep the usable rows, and split them into train/eval/validation; with
    an `eval_file`, its rows are the eval split and the data's rows with the same input stay out of train."""
    template = _checked_template(spec, columns)
    if spec.task == CLASSIFY:
        kept, gold, left_out, rare = _filter_rows(spec, rows)
        choices = _resolve_choices(spec, gold, rare)
    else:
        (kept, gold, left_out), rare, choices = _with_references(spec, rows), {}, ()
    if not kept:
        raise DatasetError(_nothing_left(spec, len(rows), left_out))
    bound = template.bind_choices(choices)
    unique: list[PreparedRow] = []
    seen: set[str] = set()
    for index in kept:
        fields = tuple(cell_text(rows[index].get(name)) for name in bound.fields)
        prompt = bound.render(fields)
        digest = input_hash(prompt)
        if digest not in seen:
            seen.add(digest)
            unique.append(PreparedRow(index, prompt, digest, gold.get(index), fields))
    if eval_file is None:
        train, evaluation, validation, notes = _split(spec, unique)
    else:
        evaluation = _eval_file_rows(spec, bound, choices, eval_file, left_out)
        held = {r.input_hash for r in evaluation}
        pool = [r for r in unique if r.input_hash not in held]
        if len(pool) < len(unique):
            left_out[IN_EVAL_FILE] = len(unique) - len(pool)
        train, _, validation, notes = _split(spec, pool, carve_eval=False)
        notes.append(f"The eval split is the {len(evaluation)} rows of {eval_file.filename}, not carved from the data"
                     + (f"; {left_out[IN_EVAL_FILE]} rows of the data with the same input stay out of train."
                        if IN_EVAL_FILE in left_out else "."))
    evaluated = {r.input_hash for r in evaluation}
    return PreparedRun(
        template=bound,
        choices=choices,
        train=train,
        eval=evaluation,
        validation=validation,
        total_rows=len(rows),
        left_out=left_out,
        rare_labels=rare,
        duplicates=len(kept) - len(unique),
        overlap=sum(r.input_hash in evaluated for r in [*train, *validation]),
        notes=tuple(notes),
    )


def unknown_column(name: str, columns: Sequence[str], what: str = "Column") -> str:
    """"Column 'varity' not found. Columns: ... Did you mean 'variety'?" """
    message = f"{what} '{name}' not found. Columns: {', '.join(columns)}."
    close = difflib.get_close_matches(name, columns, n=1)
    return message + (f" Did you mean '{close[0]}'?" if close else "")


def _checked_template(spec: RunSpec, columns: Sequence[str]) -> Template:
    gold = spec.gold_column
    if gold is not None and gold not in columns:
        raise SpecError(unknown_column(gold, columns, "Label column" if spec.task == CLASSIFY else "Reference column"))
    if spec.task == CLASSIFY and spec.label is None and spec.choices is None:
        raise SpecError("Without a label column the bot cannot infer the choices: set choices=A,B,C or a label. "
                        "For free-text answers set task=generate; for JSON objects task=extract.")
    if spec.task == EXTRACT and spec.schema is None:
        raise SpecError("task=extract needs the answer's JSON Schema: share it as a .json file in the run's thread, "
                        "or set fields=name:string,amount:number,...")
    template = Template.parse(spec.template or default_template(columns, gold, spec.task))
    if spec.task != CLASSIFY and CHOICES in template.fields:
        raise SpecError(f"{{{CHOICES}}} lists the labels of a classify run; task={spec.task} has none. Remove it "
                        "from the template.")
    unknown = [name for name in template.columns if name not in columns]
    if unknown:
        raise SpecError(
            "The template uses placeholders that are not columns: "
            + "; ".join(unknown_column(name, columns, "{" + name + "} —") for name in unknown)
            + f" Placeholders are column names, or {{{CHOICES}}} for the label choices."
        )
    if gold is not None and gold in template.columns:
        what = "label" if spec.task == CLASSIFY else "reference"
        raise SpecError(
            f"The template shows {{{gold}}}, the {what} column itself: the model would see the answer. "
            "Remove it from the template."
        )
    return template


def _with_references(spec: RunSpec, rows: Mapping[int, Mapping[str, Any]]
                     ) -> tuple[list[int], dict[int, str], dict[str, int]]:
    """generate and extract: rows kept, their references (none without a reference column), left-out counts. A row
    without a reference is left out; so is an extract row whose reference is not a JSON object."""
    indexes = sorted(rows)
    if spec.reference is None:
        return indexes, {}, {}
    left_out: Counter[str] = Counter()
    gold: dict[int, str] = {}
    for index in indexes:
        value = rows[index].get(spec.reference)
        text = value.strip() if isinstance(value, str) else ""
        if not text:
            left_out[MISSING_REFERENCE] += 1
        elif spec.task == EXTRACT and not _json_object(text):
            left_out[REFERENCE_NOT_JSON] += 1
        else:
            gold[index] = text
    return list(gold), gold, dict(left_out)


def _json_object(text: str) -> bool:
    try:
        return isinstance(json.loads(text), dict)
    except ValueError:
        return False


def _filter_rows(
    spec: RunSpec, rows: Mapping[int, Mapping[str, Any]]
) -> tuple[list[int], dict[int, str], dict[str, int], dict[str, int]]:
    """Rows kept (in index order), their gold labels, left-out counts by reason, and the rare labels."""
    indexes = sorted(rows)
    if spec.label is None:
        return indexes, {}, {}, {}
    left_out: Counter[str] = Counter()
    gold: dict[int, str] = {}
    allowed = set(spec.choices) if spec.choices is not None else None
    for index in indexes:
        value = rows[index].get(spec.label)
        label = value.strip() if isinstance(value, str) else None
        if not label:
            left_out[MISSING_LABEL] += 1
        elif allowed is not None and label not in allowed:
            left_out[NOT_A_CHOICE] += 1
        else:
            gold[index] = label
    counts = Counter(gold.values())
    rare = {label: n for label, n in sorted(counts.items(), key=lambda item: (-item[1], item[0]))
            if n < spec.min_per_label}
    if rare:
        left_out[RARE_LABEL] = sum(rare.values())
    kept = [index for index in indexes if index in gold and gold[index] not in rare]
    return kept, {i: gold[i] for i in kept}, dict(left_out), rare


def _resolve_choices(spec: RunSpec, gold: Mapping[int, str], rare: Mapping[str, int]) -> tuple[str, ...]:
    if spec.choices is not None:
        validate_choices(spec.choices)
        return spec.choices
    counts = Counter(gold.values())
    choices = tuple(label for label, _ in sorted(counts.items(), key=lambda item: (-item[1], item[0])))
    if len(choices) < 2:
        kept = f"only {choices[0]!r} has" if choices else "no label has"
        few = ", ".join(f"{label} ({n})" for label, n in list(rare.items())[:20])
        raise SpecError(
            f"A classifier needs at least two labels, but {kept} {spec.min_per_label} or more rows in "
            f"'{spec.label}'. Labels with too few rows: {few or 'none'}. Lower min_per_label or add rows."
        )
    validate_choices(choices)
    return choices


def _nothing_left(spec: RunSpec, total: int, left_out: Mapping[str, int]) -> str:
    reasons = {
        MISSING_LABEL: f"have no value in '{spec.label}'",
        MISSING_REFERENCE: f"have no value in '{spec.reference}'",
        REFERENCE_NOT_JSON: f"have a '{spec.reference}' that is not a JSON object",
        NOT_A_CHOICE: "have a label that is not one of the choices",
        RARE_LABEL: f"have a label with fewer than {spec.min_per_label} rows",
    }
    why = "; ".join(f"{n} {reasons[reason]}" for reason, n in left_out.items())
    return (
        f"No rows left after filtering the {total} rows: {why or 'the file has no data rows'}. "
        "Check the label column and the choices, or lower min_per_label."
    )


def _eval_file_rows(spec: RunSpec, bound: Template, choices: Sequence[str], eval_file: EvalFile,
                    left_out: dict[str, int]) -> list[PreparedRow]:
    """The eval file's rows rendered like the data's: with the data's choices, each distinct input once."""
    missing = [name for name in bound.fields if name not in eval_file.columns]
    if spec.label is not None and spec.label not in eval_file.columns:
        missing.append(spec.label)
    if missing:
        raise SpecError(f"{eval_file.filename} lacks the column(s) the run needs: "
                        + "; ".join(unknown_column(name, eval_file.columns) for name in missing))
    allowed, seen, kept = set(choices), set(), []
    skipped: Counter[str] = Counter()
    for index in sorted(eval_file.rows):
        row = eval_file.rows[index]
        gold = None
        if spec.label is not None:
            value = row.get(spec.label)
            gold = value.strip() if isinstance(value, str) and value.strip() else None
            if gold is not None and gold not in allowed:
                skipped[NOT_A_CHOICE] += 1
                continue
        fields = tuple(cell_text(row.get(name)) for name in bound.fields)
        prompt = bound.render(fields)
        digest = input_hash(prompt)
        if digest in seen:
            skipped[EVAL_DUPLICATE] += 1
            continue
        seen.add(digest)
        kept.append(PreparedRow(EVAL_FILE_ROW_OFFSET + index, prompt, digest, gold, fields))
    if not kept:
        raise DatasetError(f"{eval_file.filename} has no usable eval row: {dict(skipped) or 'it has no rows'} "
                           "(labels must be among the run's choices).")
    for reason, n in skipped.items():
        left_out[f"{reason}_eval"] = n
    return kept


def _split(spec: RunSpec, rows: list[PreparedRow], carve_eval: bool = True) -> tuple[list, list, list, list[str]]:
    """Seeded, stratified by gold label: eval first (unless a separate eval file is the eval split), then train,
    then validation carved out of train."""
    notes: list[str] = []
    want_train, want_eval = spec.train_size, spec.eval_size if carve_eval else 0
    if not carve_eval and len(rows) < want_train:
        notes.append(f"Only {len(rows)} usable rows for training instead of {want_train}.")
        want_train = len(rows)
    if len(rows) < want_train + want_eval:
        want_eval = round(len(rows) * spec.eval_size / (spec.train_size + spec.eval_size))
        want_train = len(rows) - want_eval
        notes.append(
            f"Only {len(rows)} usable rows: train {want_train} and eval {want_eval} "
            f"instead of {spec.train_size} and {spec.eval_size}."
        )
    if want_train - spec.validation_size < MIN_TRAIN_EXAMPLES or (carve_eval and want_eval < 1):
        if len(rows) > MIN_TRAIN_EXAMPLES + spec.validation_size:
            raise SpecError(_sizes_do_not_fit(spec, len(rows)))
        raise SpecError(
            f"Only {len(rows)} usable rows: not enough for {MIN_TRAIN_EXAMPLES} training rows (OpenAI's minimum) "
            f"plus an eval split. Add rows, lower min_per_label, or widen the choices."
        )
    rng = random.Random(spec.seed)
    groups: dict[str | None, list[PreparedRow]] = {}
    for row in rows:  # stratified by label; a free-text reference is no stratum
        groups.setdefault(row.gold_label if spec.task == CLASSIFY else None, []).append(row)
    ordered = sorted(groups, key=lambda label: (label is None, label or ""))
    for label in ordered:
        rng.shuffle(groups[label])
    evaluation = _take(groups, ordered, want_eval)
    train = _take(groups, ordered, want_train)
    validation: list[PreparedRow] = []
    if spec.validation_size:
        pool: dict[str | None, list[PreparedRow]] = {}
        for row in train:
            pool.setdefault(row.gold_label if spec.task == CLASSIFY else None, []).append(row)
        validation = _take(pool, ordered, spec.validation_size)
        chosen = {r.row_index for r in validation}
        train = [r for r in train if r.row_index not in chosen]
    by_index = operator.attrgetter("row_index")
    return sorted(train, key=by_index), sorted(evaluation, key=by_index), sorted(validation, key=by_index), notes


def _sizes_do_not_fit(spec: RunSpec, usable: int) -> str:
    """There are rows enough for a split, but not in the proportion train and eval ask for."""
    eval_rows = max(1, min(spec.eval_size, usable // 5))
    train_rows = min(spec.train_size, usable - eval_rows)
    return (f"train={spec.train_size:,} and eval={spec.eval_size:,} ask for {spec.train_size + spec.eval_size:,} rows "
            f"but the data has {usable:,} usable rows, so one split would be left with almost none. Ask for what the "
            f"data holds, e.g. train={train_rows:,} eval={eval_rows:,}.")


def _take(groups: dict[str | None, list[PreparedRow]], order: list, count: int) -> list[PreparedRow]:
    """Remove `count` rows from the front of the groups, each group's share proportional to its size."""
    sizes = {label: len(groups.get(label, [])) for label in order}
    total = sum(sizes.values())
    if not total or not count:
        return []
    shares = {label: count * sizes[label] / total for label in order}
    taken = {label: int(shares[label]) for label in order}
    position = {label: i for i, label in enumerate(order)}
    remainders = sorted(order, key=lambda label: (-(shares[label] - taken[label]), position[label]))
    for label in remainders[: count - sum(taken.values())]:
        taken[label] += 1
    picked: list[PreparedRow] = []
    for label in order:
        group = groups.get(label, [])
        picked.extend(group[: taken[label]])
        del group[: taken[label]]
    return picked
