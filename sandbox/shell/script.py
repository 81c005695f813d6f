"""The shell's script language: one step per line.

    /distill new tickets          a slash command from the current user in the current channel
    :as bob                       act as another user (created on first use)
    :channel ml-team              switch channel (created on first use)
    :upload tickets.csv [RUN]     share a file into a run's thread (default: the last run created)
    :click approve [RUN]          press the newest button with this action name
    :wait done [RUN] [SECONDS]    wait until the run reaches a state
    :sleep 2                      pause
    # a comment                   (blank lines too) does nothing

A line that cannot be a step raises ScriptError naming the problem and the right form, before anything runs.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

DEFAULT_WAIT_SECONDS = 60.0


class ScriptError(ValueError):
    """A line that is not a step of the script language."""


@dataclass(frozen=True)
class Command:
    text: str  # what follows "/distill "


@dataclass(frozen=True)
class As:
    user: str


@dataclass(frozen=True)
class Channel:
    name: str


@dataclass(frozen=True)
class Upload:
    path: str
    run: str | None = None


@dataclass(frozen=True)
class Click:
    action: str
    run: str | None = None


@dataclass(frozen=True)
class Wait:
    state: str
    run: str | None = None
    seconds: float = DEFAULT_WAIT_SECONDS


@dataclass(frozen=True)
class Sleep:
    seconds: float


Step = Command | As | Channel | Upload | Click | Wait | Sleep


@dataclass(frozen=True)
class Line:
    number: int
    text: str
    step: Step


FORMS = {
    ":as": ":as USER",
    ":channel": ":channel NAME",
    ":upload": ":upload PATH [RUN]",
    ":click": ":click ACTION [RUN]",
    ":wait": ":wait STATE [RUN] [SECONDS]",
    ":sleep": ":sleep SECONDS",
}


def _seconds(word: str, form: str) -> float:
    try:
        value = float(word)
    except ValueError:
        raise ScriptError(f"{word!r} is not a number of seconds; the form is {form}") from None
    if not value >= 0:
        raise ScriptError(f"seconds cannot be negative ({word}); the form is {form}")
    return value


def _is_number(word: str) -> bool:
    try:
        float(word)
    except ValueError:
        return False
    return True


def _directive(name: str, args: list[str]) -> Step:
    form = FORMS.get(name)
    if form is None:
        raise ScriptError(f"unknown directive {name}; the directives are {', '.join(FORMS)}")
    low = sum(1 for word in form.split()[1:] if not word.startswith("["))
    high = len(form.split()) - 1
    if not low <= len(args) <= high:
        raise ScriptError(f"{name} takes {low if low == high else f'{low} to {high}'} argument"
                          f"{'' if high == 1 else 's'}, got {len(args)}; the form is {form}")
    if name == ":as":
        return As(args[0])
    if name == ":channel":
        return Channel(args[0].lstrip("#"))
    if name == ":upload":
        return Upload(*args)
    if name == ":click":
        return Click(*args)
    if name == ":sleep":
        return Sleep(_seconds(args[0], form))
    state, rest = args[0], args[1:]
    if len(rest) == 2:
        return Wait(state, rest[0], _seconds(rest[1], form))
    if rest and _is_number(rest[0]):
        return Wait(state, None, _seconds(rest[0], form))
    return Wait(state, *rest)


def parse_line(text: str) -> Step | None:
    """The step on one line, None for a blank line or a comment."""
    stripped = text.strip()
    if not stripped or stripped.startswith("#"):
        return None
    if stripped == "/distill" or stripped.startswith("/distill "):
        return Command(stripped.removeprefix("/distill").strip())
    if stripped.startswith("/"):
        raise ScriptError(f"unknown slash command {stripped.split()[0]}; the bot answers /distill")
    if not stripped.startswith(":"):
        raise ScriptError("a line is a /distill command, a :directive or a # comment "
                          f"(directives: {', '.join(FORMS.values())})")
    try:
        words = shlex.split(stripped)
    except ValueError as exc:
        raise ScriptError(f"{exc} (quote paths with spaces like :upload \"my data.csv\")") from None
    return _directive(words[0], words[1:])


def parse_script(lines: Iterable[str]) -> Iterator[Line]:
    """Each step with its line number (from 1); a bad line raises ScriptError naming its number and text."""
    for number, text in enumerate(lines, 1):
        try:
            step = parse_line(text)
        except ScriptError as exc:
            raise ScriptError(f"line {number}: {text.strip()}\n  {exc}") from None
        if step is not None:
            yield Line(number, text.strip(), step)
