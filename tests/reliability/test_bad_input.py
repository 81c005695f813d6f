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


@pytest.mark.parametrize("case", CORPUS, ids=lambda c: c.name)
async def test_each_bad_file_gets_one_clear_message_and_the_data_before_it_is_kept(with_data, case):
    bot = with_data
    before = await bot.run("tickets")
    posts_before = len(bot.slack.calls_to("chat.postMessage"))
    await share(bot, case, before.thread_ts)

    posts = bot.slack.calls_to("chat.postMessage")[posts_before:]
    assert posts and all(p.ok and p.thread_ts == before.thread_ts and not p.warnings for p in posts)
    texts = thread_texts([p.args for p in posts])
    assert texts[0].startswith(LOADED if case.loaded else REFUSED), texts[0]
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
