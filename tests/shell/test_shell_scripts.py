"""Shell scripts against the real app and the sandbox servers: approvals, bad input, waits and the transcript."""

from __future__ import annotations

import io
import json

import pytest

from bot.examples import TICKETS_CSV
from bot.trainers import get_trainer
from sandbox.shell.session import Session, SessionOptions
from tests.conftest import TODAY
from tests.shell.conftest import READY


async def test_a_rejected_request_ends_the_stage_and_clicking_approve_afterwards_fails_that_line(shell):
    result = await shell(READY + """/distill collect tickets
:as carol
:click reject
:wait ready 5
:click approve
/distill status tickets
""")
    assert result.status == 1
    assert "error: line 8: :click approve\n  no button 'approve' that carol can see in #general" in result.err
    assert "🚫 Rejected by @carol." in result.out
    assert "/distill status tickets" not in result.out, "the script stops at the failing line"


async def test_the_requester_cannot_approve_their_own_spend_and_the_wait_for_it_times_out(shell):
    result = await shell(READY + """/distill collect tickets
:click approve
:wait collecting 0.5
""", env={"DISTILL_APPROVERS": "U0ALICE,U0BOB"})
    assert result.status == 1
    refusal = result.out[result.out.index("alice@#general> :click approve"):]
    assert "(only @alice sees this)" in refusal and "someone else has to approve it" in refusal
    assert ("error: line 6: :wait collecting 0.5\n  run 'tickets' did not reach 'collecting' within 0.5 s "
            "(it is 'awaiting_approval')") in result.err


async def test_a_bad_csv_is_explained_in_the_thread_and_the_run_waits_for_a_good_one(shell, tmp_path):
    (tmp_path / "broken.csv").write_bytes(b"\xff\xfe\x00garbage\x00\x00")
    result = await shell(f"""
/distill new tickets
:upload broken.csv
/distill status tickets
:upload {TICKETS_CSV}
:wait ready 5
""")
    assert result.status == 0, result.err
    refused = result.out[result.out.index(":upload broken.csv"):result.out.index("/distill status")]
    assert "⚠️ Could not use *broken.csv*:" in refused
    assert "*tickets* is *created*." in result.out
    assert "✅ Loaded *it-tickets.csv*: 480 rows" in result.out


async def test_waiting_on_a_state_the_run_does_not_reach_fails_with_the_line_and_the_state(shell):
    result = await shell("/distill new tickets\n# nothing uploaded\n:wait ready 0.2")
    assert result.status == 1
    assert result.err.startswith("error: line 3: :wait ready 0.2\n  run 'tickets' did not reach 'ready' within 0.2 s "
                                 "(it is 'created')")


async def test_the_transcript_holds_every_web_api_call_the_app_made_in_order(shell, tmp_path):
    path = tmp_path / "calls" / "slack.jsonl"
    result = await shell(READY + "/distill status tickets", transcript=path)
    assert result.status == 0, result.err
    calls = [json.loads(line) for line in path.read_text().splitlines()]
    assert all(set(call) == {"method", "arguments", "time", "ok", "error"} for call in calls)
    assert [c["time"] for c in calls] == sorted(c["time"] for c in calls)
    card, *replies = [c["arguments"] for c in calls if c["method"] == "chat.postMessage"]
    assert card["channel"] == "C0GENERAL" and "thread_ts" not in card
    assert card["blocks"][0]["text"]["text"] == "Distill run: tickets"
    edits = [c["arguments"] for c in calls if c["method"] == "chat.update"]
    [card_ts] = {edit["ts"] for edit in edits}
    assert {reply["thread_ts"] for reply in replies} == {card_ts}, "everything else goes into the run's thread"
    assert len([r for r in replies if "Loaded *it-tickets.csv*" in r["text"]]) == 1
    assert all(c["ok"] and c["error"] is None for c in calls)
    assert "xoxb-" not in path.read_text(), "the bot token is not in the arguments"


async def test_a_wait_ends_at_once_when_the_run_is_cancelled_through_a_button_only_its_user_sees(shell):
    result = await shell("/distill new tickets\n/distill cancel tickets\n:click cancel_confirmed\n:wait ready 30")
    assert result.status == 1
    assert "(only @alice sees this)" in result.out and "[Cancel the run → :click cancel_confirmed]" in result.out
    assert result.err.startswith("error: line 4: :wait ready 30\n  run 'tickets' is cancelled, so it will not reach "
                                 "'ready' by itself")


async def test_the_trainer_flag_is_set_on_every_run_the_session_creates_and_no_other(shell):
    result = await shell("/distill new a\n/distill new a\n/distill new b", trainer="openai")
    assert result.status == 0, result.err
    # A student that trainer fine-tunes comes with it (new runs default to Together's Qwen/Qwen3.5-9B).
    setting = "trainer=openai student=gpt-4o-mini-2024-07-18"
    assert result.out.count(f"(the shell, for --trainer openai) /distill set a {setting}") == 1
    assert result.out.count(f"(the shell, for --trainer openai) /distill set b {setting}") == 1
    assert result.out.count("@alice changed `trainer=openai`, `student=gpt-4o-mini-2024-07-18`.") == 2


@pytest.mark.parametrize("trainer", [None, "together"])
async def test_with_the_together_trainer_the_session_serves_togethers_stand_in_and_points_the_bot_at_it(tmp_path,
                                                                                                        trainer):
    # Together is the default trainer, so its stand-in is served unless the session trains at OpenAI.
    out = io.StringIO()
    async with await Session.open(SessionOptions(db=tmp_path / "d.db", trainer=trainer, today=TODAY), out) as session:
        assert session.settings.together_base_url.startswith("http://127.0.0.1:")
        assert "/v1" not in session.settings.together_base_url  # together-py 3.x adds the version to each path
        trainer_ = get_trainer("together", session.settings)
        check = await trainer_.check_base_model("Qwen/Qwen3.5-9B")
        refused = await trainer_.check_base_model("gpt-4o-mini-2024-07-18")
        await trainer_.close()
    assert check.trainable and not refused.trainable and "Together does not fine-tune" in refused.message


async def test_with_the_openai_trainer_no_together_stand_in_is_served(tmp_path):
    options = SessionOptions(db=tmp_path / "d.db", trainer="openai", today=TODAY)
    async with await Session.open(options, io.StringIO()) as session:
        assert not session.trainer_stand_in and session.settings.together_base_url == "https://api.together.ai"


async def test_with_openai_given_the_session_sends_every_model_request_to_that_endpoint(shell, make_openai_sandbox):
    endpoint = await make_openai_sandbox(api_key="sk-endpoint-key")
    result = await shell(READY + "/distill collect tickets\n:as bob\n:click approve\n:wait collected 30",
                         openai_url=endpoint.url, env={"OPENAI_API_KEY": "sk-endpoint-key"}, trainer="openai")
    assert result.status == 0, result.err
    assert f"and {endpoint.url}." in result.out and "sandbox OpenAI" not in result.out
    paid = [r for r in endpoint.requests.paid() if r.path == "/v1/chat/completions"]
    assert len(paid) == 30 + 20 + 20, "teacher on train and eval, base student on eval: all at the given endpoint"
    assert "sk-endpoint-key" not in result.out + result.err
