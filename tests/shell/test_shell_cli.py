"""`distill-bot shell` as a command: a script on standard input, a prompt on a terminal, flags that cannot work."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

from bot.cli.main import main
from bot.examples import TICKETS_CSV
from tests.conftest import TODAY
from tests.waiting import killed_after

ROOT = Path(__file__).resolve().parents[2]


def _env(**extra: str) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DISTILL_", "SLACK_", "OPENAI_", "LOG_"))}
    return {**clean, **extra}


def test_a_script_on_standard_input_stops_non_zero_at_its_failing_line(tmp_path):
    script = f"/distill new tickets\n:upload {TICKETS_CSV}\n:click approve\n/distill list\n"
    command = [sys.executable, "-m", "bot", "shell", "--today", TODAY, "--script", "-", "--db", str(tmp_path / "d.db")]
    done = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=ROOT, env=_env())
    with killed_after(done, 120):
        stdout, stderr = done.communicate(script)
    assert done.returncode == 1
    assert stderr.endswith("error: line 3: :click approve\n  no button 'approve' that alice can see in #general; "
                                "buttons there now: collect, estimate\n")
    assert "✅ Loaded *it-tickets.csv*: 480 rows" in stdout and "/distill list" not in stdout
    assert (tmp_path / "d.db").is_file(), "--db names the database the session keeps"


def test_a_script_with_a_bad_line_is_refused_before_anything_starts(tmp_path, capsys):
    script = tmp_path / "bad.distill"
    script.write_text("/distill new tickets\n:wiat done\n")
    assert main(["shell", "--script", str(script), "--db", str(tmp_path / "d.db")]) == 1
    assert capsys.readouterr().err == ("error: line 2: :wiat done\n  unknown directive :wiat; the directives are :as, "
                                       ":channel, :upload, :click, :wait, :sleep\n")
    assert not (tmp_path / "d.db").exists()


def test_flags_that_cannot_work_here_say_why_and_what_to_do(tmp_path, capsys, monkeypatch):
    for name in ("OPENAI_API_KEY", "DISTILL_APPROVERS"):
        monkeypatch.delenv(name, raising=False)
    script = str(tmp_path / "none.distill")
    assert main(["shell", "--script", script, "--openai", "http://127.0.0.1:9/v1"]) == 2
    assert "--openai http://127.0.0.1:9/v1 needs OPENAI_API_KEY in the environment" in capsys.readouterr().err
    assert main(["shell", "--script", script, "--trainer", "colab"]) == 2
    assert ("--trainer colab is not available in this version: bot/trainers has no 'colab' back end"
            in capsys.readouterr().err)
    assert main(["shell", "--script", script]) == 2
    assert "--script " + script + ": no such file" in capsys.readouterr().err


def _read_until(fd: int, text: str, seen: list[str], seconds: float = 60) -> str:
    deadline = time.monotonic() + seconds
    while text not in "".join(seen):
        assert time.monotonic() < deadline, f"no {text!r} on the terminal; it shows:\n{''.join(seen)}"
        if select.select([fd], [], [], 0.2)[0]:
            seen.append(os.read(fd, 65536).decode(errors="replace"))
    whole = "".join(seen)
    seen[:] = [whole[whole.index(text) + len(text):]]
    return whole


def test_on_a_terminal_the_shell_prompts_with_the_user_and_channel_and_ends_at_ctrl_d(tmp_path):
    controller, terminal = pty.openpty()
    process = subprocess.Popen([sys.executable, "-m", "bot", "shell", "--today", TODAY, "--db", str(tmp_path / "d.db")],
                               cwd=ROOT,
                               env=_env(TERM="dumb"), stdin=terminal, stdout=terminal, stderr=terminal)
    os.close(terminal)
    seen: list[str] = []
    try:
        _read_until(controller, "alice@#general> ", seen)
        os.write(controller, b"/distill new tickets\n")
        assert "Distill run: tickets" in _read_until(controller, "alice@#general> ", seen)
        os.write(controller, b":as bob\n:click nothing\n")
        _read_until(controller, "error: no button 'nothing' that bob can see", seen)
        _read_until(controller, "bob@#general> ", seen)
        os.write(controller, b"\x04")
        with killed_after(process, 60):
            assert process.wait() == 0
    finally:
        process.kill()
        os.close(controller)
