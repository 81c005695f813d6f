import subprocess
import sys
from pathlib import Path

from bot.cli.main import COMMANDS, build_parser, main
from storage.migrations import bundled_migrations
from tests.conftest import doc_text


def test_db_upgrade_then_check_on_a_fresh_path_prints_the_schema_version(tmp_path: Path):
    path = tmp_path / "new" / "distill.db"
    root = Path(__file__).resolve().parents[2]
    upgrade = subprocess.run([sys.executable, "-m", "bot", "db", "upgrade", "--db", str(path)],
                             capture_output=True, text=True, cwd=root, check=False)
    assert upgrade.returncode == 0, upgrade.stderr
    latest = bundled_migrations()[-1].version
    assert latest >= 2 and upgrade.stdout.strip() == f"schema version {latest}"
    check = subprocess.run([sys.executable, "-m", "bot", "db", "check", "--db", str(path)],
                           capture_output=True, text=True, cwd=root, check=False)
    assert check.returncode == 0, check.stderr
    assert check.stdout.strip() == f"{path}: schema version {latest}, integrity ok"


def test_db_check_on_a_missing_file_says_how_to_create_it(tmp_path, capsys):
    assert main(["db", "check", "--db", str(tmp_path / "none.db")]) == 1
    assert "distill-bot db upgrade" in capsys.readouterr().err


def test_bad_configuration_exits_with_the_variable_named(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("DISTILL_POLL_SECONDS", "soon")
    assert main(["db", "upgrade", "--db", str(tmp_path / "x.db")]) == 2
    assert "DISTILL_POLL_SECONDS" in capsys.readouterr().err


def test_every_command_has_help_with_an_example_and_is_in_the_docs():
    documented = doc_text("configuration.md")
    parser = build_parser()
    for command in COMMANDS:
        assert command.summary and command.example.startswith("distill-bot ")
        help_text = _help_of(parser, command.name.split())
        assert command.summary in help_text and f"Example: {command.example}" in help_text
        assert f"distill-bot {command.name}" in documented, f"docs/configuration.md does not mention `{command.name}`"


def _help_of(parser, words):
    action = next(a for a in parser._actions if a.dest == "command")
    sub = action.choices[words[0]]
    if len(words) == 2:
        sub = next(a for a in sub._actions if a.dest == "subcommand").choices[words[1]]
    return sub.format_help()


def test_the_readme_says_beside_its_two_commands_that_make_test_needs_the_shared_folder():
    """Issue 19: that `make test` needs ../shared beside the checkout was said only far below the commands."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    top = readme[:readme.index("## What it does")]
    assert "make test" in top and "`../shared`, which must sit beside the checkout" in top
