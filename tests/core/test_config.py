import logging
import re

import pytest

from bot.core.config import VARIABLES, Secret, Settings
from bot.core.errors import ConfigError
from bot.core.logs import RedactingFilter
from tests.conftest import doc_text


def test_defaults_match_the_documented_ones():
    settings = Settings.from_env({})
    assert settings.teacher_model == "gpt-6.2-sol"  # a current model with no announced shutdown date
    assert settings.tokens_per_minute == 2_000_000
    # OpenAI takes no new fine-tuning jobs after 2027-01-06: a new run trains a student Together fine-tunes and serves.
    assert (settings.student_model, settings.trainer) == ("Qwen/Qwen3.5-9B", "together")
    assert (settings.together_base_url, settings.together_project_id) == ("https://api.together.ai", None)
    assert str(settings.db_path) == "distill.db"
    assert (settings.min_approvals, settings.allow_self_approval, settings.auto_approve_micro_usd) == (1, False, 0)
    assert (settings.poll_seconds, settings.max_csv_mb) == (30.0, 100)
    assert settings.slack_bot_token is None


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("DISTILL_MIN_APPROVALS", "two", "whole number"),
        ("DISTILL_MIN_APPROVALS", "0", "from 1 to 1,000,000,000"),
        ("DISTILL_ALLOW_SELF_APPROVAL", "maybe", "true or false"),
        ("DISTILL_AUTO_APPROVE_USD", "-3", "from 0 to 1,000,000"),
        ("DISTILL_AUTO_APPROVE_USD", "1e999990", "from 0 to 1,000,000"),
        ("DISTILL_POLL_SECONDS", "inf", "above 0 and at most 86,400"),
        ("PORT", "70000", "from 1 to 65,535"),
        ("DISTILL_AUTO_APPROVE_USD", "five", "US dollars"),
        ("DISTILL_POLL_SECONDS", "0", "above 0"),
        ("DISTILL_APPROVERS", "U123,bob", "not an ID: bob"),
        ("OPENAI_BASE_URL", "api.openai.com", "http(s) URL"),
        ("DISTILL_MAX_CSV_MB", "1.5", "whole number"),
        ("LOG_LEVEL", "loud", "DEBUG, INFO"),
        ("DISTILL_TRAINER", "colab", "one of together, openai"),
        ("TOGETHER_PROJECT_ID", "proj abc", "Together project ID"),
        ("TOGETHER_BASE_URL", "api.together.ai", "http(s) URL"),
    ],
)
def test_a_bad_value_names_the_variable_and_the_problem(name, value, says):
    with pytest.raises(ConfigError) as error:
        Settings.from_env({name: value})
    assert name in str(error.value) and says in str(error.value)


def test_every_bad_variable_is_reported_at_once():
    with pytest.raises(ConfigError) as error:
        Settings.from_env({"DISTILL_MIN_APPROVALS": "x", "DISTILL_POLL_SECONDS": "y"})
    assert "DISTILL_MIN_APPROVALS" in str(error.value) and "DISTILL_POLL_SECONDS" in str(error.value)


def test_values_are_parsed():
    settings = Settings.from_env({"DISTILL_APPROVERS": "U01ABC, S0GROUP", "DISTILL_AUTO_APPROVE_USD": "2.50",
                                  "DISTILL_ALLOW_SELF_APPROVAL": "yes", "OPENAI_BASE_URL": "http://127.0.0.1:9/v1/"})
    assert settings.approvers == ("U01ABC", "S0GROUP")
    assert settings.auto_approve_micro_usd == 2_500_000
    assert settings.allow_self_approval is True
    assert settings.openai_base_url == "http://127.0.0.1:9/v1"


@pytest.mark.parametrize("given", ["https://api.together.xyz/v1", "https://api.together.xyz/v1/",
                                   "https://api.together.xyz"])
def test_a_together_base_url_ending_in_v1_is_taken_without_it(given):
    # together-py 3.x puts /v1, /v2 or /v3 in each path: the 2.x-style URL (and the old default) would double it.
    settings = Settings.from_env({"TOGETHER_BASE_URL": given, "TOGETHER_PROJECT_ID": "proj_abc",
                                  "DISTILL_TRAINER": "OpenAI"})
    assert (settings.together_base_url, settings.together_project_id, settings.trainer) == (
        "https://api.together.xyz", "proj_abc", "openai")


def test_secrets_never_show_in_repr_or_errors():
    settings = Settings.from_env({"SLACK_BOT_TOKEN": "xoxb-very-secret", "OPENAI_API_KEY": "sk-abcdefghijkl"})
    assert "very-secret" not in repr(settings) and "abcdefghijkl" not in repr(settings)
    assert settings.slack_bot_token.reveal() == "xoxb-very-secret"
    with pytest.raises(ConfigError) as error:
        Settings.from_env({"OPENAI_API_KEY": " sk-leak-me-please "})
    assert "leak-me" not in str(error.value) and "OPENAI_API_KEY" in str(error.value)


def test_require_names_every_missing_variable():
    with pytest.raises(ConfigError) as error:
        Settings.from_env({"SLACK_BOT_TOKEN": "xoxb-1"}).require(
            "SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "OPENAI_API_KEY")
    assert "SLACK_SIGNING_SECRET, OPENAI_API_KEY" in str(error.value)
    assert "SLACK_BOT_TOKEN" not in str(error.value)


def test_log_records_mask_configured_secrets_and_token_shapes(caplog):
    logger = logging.getLogger("test.redaction")
    logger.addFilter(RedactingFilter(["my-signing-secret"]))
    with caplog.at_level(logging.INFO, logger="test.redaction"):
        logger.info("secret %s and token %s", "my-signing-secret", "xoxb-1234-5678-abcdef")
    assert "my-signing-secret" not in caplog.text and "xoxb-1234" not in caplog.text
    assert "********" in caplog.text


def test_the_configuration_table_has_every_variable_with_its_default_in_order():
    rows = re.findall(r"^\| `([A-Z_]+)` \| ([^|]+) \|", doc_text("configuration.md"), re.M)
    shown = {None: "(none)", "": "(empty)"}
    assert rows == [(v.name, shown.get(v.default, f"`{v.default}`")) for v in VARIABLES]


def test_secret_equality_without_exposure():
    assert Secret("a") == Secret("a") and "a" not in f"{Secret('a')}"
