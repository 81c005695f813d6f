"""The script language: every step's form, and bad lines refused with their number and the right form."""

from __future__ import annotations

import pytest

from sandbox.shell.script import (
    DEFAULT_WAIT_SECONDS,
    As,
    Channel,
    Click,
    Command,
    ScriptError,
    Sleep,
    Upload,
    Wait,
    parse_line,
    parse_script,
)


@pytest.mark.parametrize(("line", "step"), [
    ("/distill new tickets", Command("new tickets")),
    ('/distill set t template="Ticket: {subject}"', Command('set t template="Ticket: {subject}"')),
    ("/distill", Command("")),
    (":as bob", As("bob")),
    (":channel #ml-team", Channel("ml-team")),
    (":upload 'my data.csv'", Upload("my data.csv")),
    (":upload a.csv wine", Upload("a.csv", "wine")),
    (":click approve", Click("approve")),
    (":click reject wine", Click("reject", "wine")),
    (":wait done", Wait("done", None, DEFAULT_WAIT_SECONDS)),
    (":wait done 90", Wait("done", None, 90.0)),
    (":wait done wine", Wait("done", "wine", DEFAULT_WAIT_SECONDS)),
    (":wait done wine 2.5", Wait("done", "wine", 2.5)),
    (":sleep 0.5", Sleep(0.5)),
    ("   # a comment", None),
    ("", None),
])
def test_each_form_of_a_line_is_one_step(line, step):
    assert parse_line(line) == step


@pytest.mark.parametrize(("line", "message"), [
    (":approve", "unknown directive :approve; the directives are :as, :channel, :upload, :click, :wait, :sleep"),
    (":click", ":click takes 1 to 2 arguments, got 0; the form is :click ACTION [RUN]"),
    (":as bob carol", ":as takes 1 argument, got 2; the form is :as USER"),
    (":wait done wine soon", "'soon' is not a number of seconds; the form is :wait STATE [RUN] [SECONDS]"),
    (":sleep -1", "seconds cannot be negative (-1); the form is :sleep SECONDS"),
    ("/deploy now", "unknown slash command /deploy; the bot answers /distill"),
    ("hello bot", "a line is a /distill command, a :directive or a # comment"),
    (":upload 'unclosed", "No closing quotation"),
])
def test_a_bad_line_names_the_problem_and_the_form(line, message):
    with pytest.raises(ScriptError) as raised:
        parse_line(line)
    assert message in str(raised.value)


def test_a_script_numbers_its_steps_by_line_and_names_the_first_bad_line():
    lines = ["# demo", "", "/distill new t", ":as bob"]
    assert [(line.number, line.text) for line in parse_script(lines)] == [(3, "/distill new t"), (4, ":as bob")]
    with pytest.raises(ScriptError, match=r"^line 3: :wait\n  :wait takes 1 to 3 arguments, got 0"):
        list(parse_script(["/distill new t", "", ":wait"]))
