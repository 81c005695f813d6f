"""Broken and hostile CSVs shared into a run's thread, and fuzzed /distill arguments, through the real app.

Each file gets one clear message in the thread (why it was refused, or what was loaded, with user text escaped and
within Slack's limits), and the dataset stored before it is not lost: a refused file leaves the run on its previous
data, an accepted one leaves the previous data stored. Every command gets a clear answer, never a stack trace.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.examples import TICKETS_CSV
from handlers.commands import COMMANDS, UsageError, parse
from sandbox.slack import payloads
from tests.handlers.conftest import CHANNEL, thread_texts

MAX_MB, MAX_ROWS = 1, 1_000  # the bot's limits in these tests (DISTILL_MAX_CSV_MB, DISTILL_MAX_ROWS)
REFUSED, LOADED = ":warning: Could not use *", ":white_check_mark: Loaded *"
LINES = "text,label\n" + "".join(f"ticket {i} about the printer,{'ab'[i % 2]}\n" for i in range(6))


def rows(count: int) -> bytes:
    return ("text,label\n" + "".join(f"row {i},{'ab'[i % 2]}\n" for i in range(count))).encode()


@dataclass(frozen=True)
class Case:
    name: str
    content: bytes
    expected: str  # in the message about the file
    loaded: bool = False
    claimed_size: int | None = None  # the `size` Slack reports, when it is not the content's


CORPUS = [
    Case("empty.csv", b"", "is empty. Upload a CSV with a header row"),
    Case("bom-only.csv", b"\xef\xbb\xbf", "is empty"),
    Case("newlines-only.csv", b"\n\n\r\n", "is empty"),
    Case("header-only.csv", b"text,label\n", "has a header row but no data rows"),
    Case("ragged.csv", b"text,label\nfine,a\ntoo,many,fields\n", "line 3 has 3 fields but the header has 2"),
    Case("unclosed-quote.csv", b'text,label\n"never closed,a\nmore,b\n', "opened on line 2 is never closed"),
    Case("utf-16.csv", "\ufefftext,label\nhello,a\n".encode("utf-16-le"), "contains NUL bytes"),
    Case("nul-bytes.csv", b"text,label\nhel\x00lo,a\n", "contains NUL bytes"),
    Case("bom-then-cp1252.csv", b"\xef\xbb\xbftext,label\ncaf\xe9,a\n", "starts with a UTF-8 mark but is not UTF-8"),
    Case("workbook.csv", b"PK\x03\x04\x14\x00\x06\x00", "a zip archive or an Excel .xlsx workbook"),
    Case("report.csv", b"%PDF-1.7\n%\xe2\xe3", "is a PDF, not a CSV"),
    Case("login.csv", b"<!DOCTYPE html><html><body>Sign in</body></html>", "is an HTML page, not a CSV"),
    Case("no-header.csv", b"1,2\n3,4\n", "looks like data, not a header ('1' is a number)"),
    Case("same-names.csv", b"text,text\nhello,a\n", "duplicate column names: text"),
    Case("long-cell.csv", b"text,label\n" + b"x" * 200_000 + b",a\n", "line 2 has a value longer than 131,072"),
    Case("many-rows.csv", rows(MAX_ROWS + 1), "more than 1,000 data rows (DISTILL_MAX_ROWS)"),
    Case("two-gigabytes.csv", TICKETS_CSV.read_bytes(), "2048.0 MB, over the 1.0 MB limit (DISTILL_MAX_CSV_MB)",
         claimed_size=2 * 1024**3),
    Case("lying-size.csv", rows(100_000), "over the 1.0 MB limit", claimed_size=1_000),
    Case("tickets.csv.exe", TICKETS_CSV.read_bytes(), "not a CSV"),
    Case("cp1252.csv", "text,label\ncafé crème,a\nthé,b\n".encode("cp1252"), "read as Windows-1252", loaded=True),
    Case("bom.csv", b"\xef\xbb\xbf" + LINES.encode(), "6 rows, 2 columns", loaded=True),
    Case("semicolons.csv", LINES.replace(",", ";").encode(), "6 rows, 2 columns", loaded=True),
    Case("blank-lines-crlf.csv", b"text,label\r\n\r\nhello,a\r\n\r\nbye,b\r\n", "2 rows, 2 columns", loaded=True),
    Case("ten-thousand-columns.csv", (",".join(f"c{i}" for i in range(10_000)) + "\n" + "x," * 9_999 + "x\n").encode(),
         "1 rows, 10000 columns", loaded=True),
    Case("formulas.csv", b'text,label\n"=HYPERLINK(""http://evil.example"",""x"")",a\n+cmd|\' /c calc\'!A1,b\n'
         b"@SUM(1),a\n-2+3,b\n", "4 rows, 2 columns", loaded=True),
    Case("mrkdwn.csv", b"text,label\n<!channel> *bold* <http://evil.example|click> ```,<@U0BOB>\n"
         b"hi &amp; bye,<!here>\n", "2 rows, 2 columns", loaded=True),
    Case("zero-width.csv", "text,label\nhel\u200blo,a\nbye\u200d,b\n\u2066rtl\u2069,a\n".encode(), "3 rows",
         loaded=True),
    Case("<!everyone> *evil*.csv", LINES.encode(), "&lt;!everyone&gt; *evil*.csv*: 6 rows", loaded=True),
    # Issue 19: a name past a section's 3,000 characters lost the whole "Loaded" message (invalid_blocks).
    Case("n" * 5_000 + ".csv", LINES.encode(), "characters left out] … nnnn", loaded=True),
]


async def share(bot, case: Case, thread_ts: str) -> None:
    """Share the file in the thread; with claimed_size, Slack's event reports that size instead of the real one."""
    if case.claimed_size is None:
        await bot.share(case.content, case.name, thread_ts=thread_ts)
        return
    ws = bot.slack.workspace
    message = ws.share([ws.add_file("U0ALICE", case.name, case.content)], ws.channel("general"),
                       ws.user_message("U0ALICE", "", subtype="file_share"), thread_ts)
    event = payloads.event_callback(ws, payloads.message_event(message, ws.channel("general")))
    event["event"]["files"][0]["size"] = case.claimed_size
    await bot.driver.send_event(event)
    await bot.bot.idle()


@pytest.fixture
async def with_data(make_bot):
    """A run whose thread already loaded the tickets CSV."""
    bot = await make_bot(DISTILL_MAX_CSV_MB=str(MAX_MB), DISTILL_MAX_ROWS=str(MAX_ROWS))
    await bot.command("new tickets")
    await bot.share(TICKETS_CSV.read_bytes(), "it-tickets.csv", thread_ts=(await bot.run("tickets")).thread_ts)
    return bot


def _case_id(case: Case) -> str:
    return case.name if len(case.name) <= 40 else f"{case.name[:8]}...{case.name[-4:]}-{len(case.name)}-chars"


@pytest.mark.parametrize("case", CORPUS, ids=_case_id)
async def test_each_bad_file_gets_one_clear_message_and_the_data_before_it_is_kept(with_data, case):
    bot = with_data
    before = await bot.run("tickets")
    posts_before = len(bot.slack.calls_to("chat.postMessage"))
    await share(bot, case, before.thread_ts)

    posts = bot.slack.calls_to("chat.postMessage")[posts_before:]
    assert posts and all(p.ok and p.thread_ts == before.thread_ts and not p.warnings for p in posts)
    texts = thread_texts([p.args for p in posts])
    assert texts[0].startswith(LOADED if case.loaded else REFUSED), texts[0][:200]
    if case.loaded:
        assert "rows, " in texts[0] and " columns." in texts[0], "the sentence that says what was loaded is whole"
    assert case.expected in "\n".join(texts)
    sent = json.dumps([p.args for p in posts])
    assert "error id" not in sent and "Traceback" not in sent
    assert "<!" not in sent and "<@" not in sent and "<http" not in sent, "user text is escaped"
    after = await bot.run("tickets")
    kept = await bot.bot.storage.datasets.get(before.dataset_id)
    assert kept.row_count == 480 and len(await bot.bot.storage.datasets.rows(kept.id)) == 480
    if case.loaded:
        assert after.dataset_id != before.dataset_id
    else:
        assert after.dataset_id == before.dataset_id and after.state == before.state
    if case.claimed_size is not None and case.claimed_size > MAX_MB * 1024 * 1024:
        assert len(bot.slack.downloads) == 1, "refused by Slack's size, before downloading"


def test_the_corpus_has_at_least_twenty_hostile_files():
    assert len(CORPUS) >= 20 and len({c.name for c in CORPUS}) == len(CORPUS)


async def test_zero_width_characters_in_the_header_do_not_hide_a_column(with_data):
    """Regression: `label=label` was refused with "Did you mean 'la\u200cbel'?", a name that looks the same."""
    bot = with_data
    data_rows = rows(30).decode().split("\n", 1)[1]
    await bot.share(f"te\u200bxt,\ufeffla\u200cbel\n{data_rows}".encode(), "invisible.csv",
                    thread_ts=(await bot.run("tickets")).thread_ts)
    texts = thread_texts(await bot.thread("tickets"))
    assert any(t.startswith(f"{LOADED}invisible.csv*") for t in texts)
    assert any("Invisible characters (zero-width spaces or joiners) were removed" in t for t in texts)
    await bot.command("set tickets label=label template={text} train=20 eval=5")
    assert bot.said_to("alice") == [] and (await bot.run("tickets")).spec["label"] == "label"


# ----- /distill arguments --------------------------------------------------------------------------------------

WORDS = st.sampled_from([c.name for c in COMMANDS] + ["", "tickets", "nosuch", "NEW", "set", "lable=x"])
ARGUMENT = st.one_of(
    st.text(max_size=30),
    st.sampled_from(['"', "'", "“", "”", "\\", "=", "label=", "=x", "&lt;", "&amp;", "<!channel>", "`", "*",
                     "train=-1", "eval=1e9", "budget=NaN", "template={nope}", "seed=", "tickets", "\n", "\u200b"]),
)
COMMAND_TEXT = st.builds(lambda first, rest: " ".join([first, *rest]), WORDS, st.lists(ARGUMENT, max_size=4))


@given(text=COMMAND_TEXT)
@settings(max_examples=300, deadline=None)
def test_the_command_parser_answers_any_text_with_a_command_or_its_usage(text):
    try:
        command, args = parse(text)
    except UsageError as exc:
        assert exc.lines and all(line.strip() for line in exc.lines)
        return
    low, high = command.arity
    assert low <= len(args) <= high


@pytest.fixture
async def with_run(make_bot):
    bot = await make_bot()
    await bot.ready_run("tickets")
    return bot


@given(text=COMMAND_TEXT)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
async def test_fuzzed_commands_get_a_clear_answer_and_lose_nothing_stored(with_run, text):
    bot = with_run
    run = await bot.run("tickets")
    said_before = len(bot.slack.ephemerals())
    reply = await bot.command(text)

    assert reply.status == 200
    answers = [json.dumps(e.message) for e in bot.slack.ephemerals()[said_before:]]
    for answer in answers:
        assert "Traceback" not in answer and "error id" not in answer, answer
    if reply.body:
        assert reply.body["response_type"] == "ephemeral" and reply.body["text"].strip()
    kept = await bot.run("tickets")
    assert kept.dataset_id == run.dataset_id and kept.card_ts == run.card_ts
    assert (await bot.bot.storage.datasets.get(run.dataset_id)).row_count == 480
    assert bot.slack.message(CHANNEL, run.card_ts) is not None


# ----- Slack's limits: user-sized text goes through one packer (handlers/packer.py) --------------------------

LONG_TEMPLATE = "Ticket: {subject}\n" + "Read the ticket with care and pick the closest category. " * 90 + "{choices}"
LONG_SYSTEM = "You sort IT tickets for a help desk. " * 110


def _sections(message: dict) -> list[str]:
    return [b["text"]["text"] for b in message.get("blocks", []) if b.get("type") == "section" and "text" in b]


@pytest.mark.parametrize("setting", [f'template="{LONG_TEMPLATE}"', f'system="{LONG_SYSTEM}"'],
                         ids=["5kb-template", "4kb-system"])
async def test_a_long_template_or_system_prompt_is_saved_and_its_confirmation_reaches_the_thread(with_run, setting):
    """Issue 19: Slack refused the confirmation (invalid_blocks) of a ~5 KB template or a 4 KB system=."""
    bot = with_run
    assert len(LONG_TEMPLATE) > 5_000 and len(LONG_SYSTEM) > 4_000
    posts_before = len(bot.slack.calls_to("chat.postMessage"))
    await bot.command(f"set tickets {setting}")
    key = setting.split("=", 1)[0]
    assert len((await bot.run("tickets")).spec[key]) > 4_000
    posts = bot.slack.calls_to("chat.postMessage")[posts_before:]
    assert posts and all(p.ok for p in posts)
    [confirmation] = [t for p in posts for t in _sections(p.args)]
    assert confirmation.startswith("<@U0ALICE> changed `" + key + "=") and len(confirmation) <= 3_000
    assert "characters left out]" in confirmation and confirmation.rstrip().endswith("`.")
    assert bot.said_to("alice") == []


async def test_the_template_form_opens_on_a_template_longer_than_its_field_and_says_why_it_is_empty(with_run):
    """Issue 19: `/distill template` failed once the template was over the field's 3,000 characters."""
    bot = with_run
    await bot.command(f'set tickets template="{LONG_TEMPLATE}"')
    await bot.command("template tickets")
    [view] = bot.slack.views("alice")
    [field] = [b for b in view["blocks"] if b["type"] == "input"]
    assert "initial_value" not in field["element"] and field["element"]["max_length"] == 3_000
    note = json.dumps(view["blocks"][view["blocks"].index(field) + 1])
    assert f"{len(LONG_TEMPLATE):,} characters, more than the 3,000 this field holds" in note
    assert "*Cancel* keeps it" in note
    assert (await bot.run("tickets")).spec["template"] == LONG_TEMPLATE, "opening the form changes nothing"


async def test_the_template_form_of_a_csv_with_hundreds_of_columns_stays_within_a_section(make_bot):
    """Issue 19: a CSV of a few hundred columns put a 41,000-character section into the template modal."""
    bot = await make_bot()
    await bot.command("new wide")
    columns = [f"measurement_{i:03d}_of_the_patient_record" for i in range(300)]
    csv = ",".join([*columns, "label"]) + "\n" + "".join(",".join([*(["1.5"] * 300), "ab"[i % 2]]) + "\n"
                                                         for i in range(20))
    await bot.share(csv.encode(), "wide.csv", thread_ts=(await bot.run("wide")).thread_ts)
    await bot.command("template wide")
    [view] = bot.slack.views("alice")
    [help_text] = _sections(view)
    assert len(help_text) <= 3_000 and "`{measurement_000_of_the_patient_record}`" in help_text
    assert "more columns (the CSV's profile in the thread lists them all)" in help_text
    assert help_text.endswith("Leave it empty for the default.")


async def test_a_5000_character_run_name_is_refused_with_the_whole_reason(make_bot):
    """Issue 19: the refusal was cut off before it said why."""
    bot = await make_bot()
    await bot.command("new " + "w" * 5_000)
    [refusal] = bot.said_to("alice")
    assert len(refusal) <= 3_000 and "characters left out]" in refusal
    assert refusal.endswith("cannot be a run name: use up to 40 lowercase letters, digits, '-' and '_', starting "
                            "with a letter or digit (for example wine-v1).")
    assert await bot.bot.storage.runs.in_channel(CHANNEL) == []


# ----- numbers: bounded before any arithmetic -----------------------------------------------------------------

@pytest.mark.parametrize(("setting", "says"), [
    ("budget=1e999990", "budget: expected an amount in US dollars from 0 to 1,000,000 such as 5 or 2.50, got "
                        "'1e999990'"),
    ("budget=1e5000", "budget: expected an amount in US dollars from 0 to 1,000,000"),
    ("budget=1e1000000", "budget: expected an amount in US dollars from 0 to 1,000,000"),
    ("seed=99999999999999999999", "seed: expected a whole number from 0 to 4,294,967,295"),
    ("max_answer_tokens=99999999999999999999", "max_answer_tokens: expected a whole number from 1 to 1,000,000"),
    ("lr=1e308", "lr: expected a number above 0 and at most 100"),
    ("train=10000000", "train=10,000,000 and eval=30 ask for 10,000,030 rows but the data has 480 usable rows"),
])
async def test_an_absurd_number_is_refused_by_name_and_changes_nothing(with_run, setting, says):
    """Issue 19: budget=1e999990 held the event loop for 26 s; 1e5000 and 1e1000000 ended in "Something went
    wrong"; train=10000000 was refused with a reason about OpenAI's minimum instead of naming train."""
    bot = with_run
    spec = (await bot.run("tickets")).spec
    await bot.command(f"set tickets {setting}")
    [refusal] = bot.said_to("alice")
    assert says in refusal and "Something went wrong" not in refusal
    assert (await bot.run("tickets")).spec == spec


# ----- prompts within the model's context window ---------------------------------------------------------------

async def test_a_command_longer_than_a_slack_message_is_refused_at_once(with_run):
    """Issue 19: a 1 MB template was stored (and reading the command alone took 70 s of the event loop)."""
    bot = with_run
    spec = (await bot.run("tickets")).spec
    reply = await bot.command('set tickets template="Ticket {subject}: ' + "printer " * 131_072 + '"')
    assert "The command is 1,048,6" in reply.body["text"] and "reads at most 40,000" in reply.body["text"]
    assert (await bot.run("tickets")).spec == spec


SMALL_WINDOW = {"models": {"local/qwen-8k": {
    "input": "0.10", "output": "0.20", "training": None, "batch_discount": "0", "context_window_tokens": 8_192,
    "max_output_tokens": 2_048, "as_of": "2026-11-29", "source": "https://example.org/a-team-served-model"}}}


async def test_a_template_over_the_models_window_is_refused_naming_both_numbers_before_any_row(make_bot, tmp_path):
    """A template (and system prompt) that alone, with the answer, overflow the window of the run's model."""
    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps(SMALL_WINDOW))
    bot = await make_bot(DISTILL_PRICES=str(prices))
    await bot.ready_run("tickets")
    await bot.command("set tickets teacher=local/qwen-8k")
    spec = (await bot.run("tickets")).spec
    await bot.command('set tickets template="Ticket {subject}: ' + "x, " * 9_000 + '{choices}"')  # 27,000 chars
    [refusal] = bot.said_to("alice")
    assert "The template and system prompt alone: 18,0" in refusal
    assert "tokens, and the answer may take 17 more (max_completion_tokens): 18,0" in refusal
    assert "over local/qwen-8k's context window of 8,192 tokens" in refusal and "teacher=..." in refusal
    assert (await bot.run("tickets")).spec == spec


async def test_a_row_whose_prompt_overflows_the_window_is_named_before_anything_is_spent(make_bot, openai_sandbox):
    bot = await make_bot()
    await bot.command("new long")
    columns = "abcdef"
    rows = [",".join([f"ticket {i}", *["printer"] * 5, "ab"[i % 2]]) for i in range(30)]
    rows[7] = ",".join(["toner " * 21_500] * 6 + ["b"])  # six cells of 129,000 characters, 21,500 tokens
    await bot.share((",".join([*columns, "label"]) + "\n" + "\n".join(rows) + "\n").encode(), "long.csv",
                    thread_ts=(await bot.run("long")).thread_ts)
    template = "".join("{" + c + "}" for c in columns)
    await bot.command(f'set long label=label train=24 eval=6 template="{template}"')
    assert bot.said_to("alice") == []
    await bot.command("estimate long")
    await bot.command("collect long")
    refusals = bot.said_to("alice")
    assert len(refusals) == 2 and not openai_sandbox.requests.paid()
    for refusal in refusals:
        assert "The prompt of row 8 (the longest): 129,0" in refusal
        assert "over gpt-4o-mini-2024-07-18's context window of 128,000 tokens" in refusal
