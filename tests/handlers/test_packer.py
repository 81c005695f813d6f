"""handlers/packer.py on its own: where a cut falls, and that nothing it returns is over Slack's limits."""

from __future__ import annotations

from handlers.packer import Message, fit_view, outgoing, pack, trim
from sandbox.slack.limits import block_problems


def test_a_cut_keeps_both_ends_says_how_much_it_left_out_and_fits():
    text = "Could not use *" + "x" * 6_000 + ".csv*: it is empty. Upload a CSV with a header row."
    cut = trim(text, 3_000)
    assert len(cut) <= 3_000 and cut.startswith("Could not use *x")
    assert cut.endswith("x.csv*: it is empty. Upload a CSV with a header row.")
    head, left_out, tail = cut.partition(" … [")[0], cut.split(" … [")[1].split("] … ")[0], cut.split("] … ")[1]
    assert int(left_out.split()[0].replace(",", "")) == len(text) - len(head) - len(tail)


def test_a_cut_never_splits_an_escaped_character_or_a_mention():
    for filler in ("&amp;" * 1_500, "<@U0ALICE> " * 700, "&lt;!channel&gt;" * 500):
        for limit in range(2_990, 3_001):
            cut = trim(filler, limit)
            body = cut.replace(cut[cut.index(" … ["):cut.index("] … ") + 4], "|")
            head, tail = body.split("|")
            assert len(cut) <= limit
            assert head.count("&") == head.count(";") and tail.count("&") == tail.count(";")
            assert head.count("<") == head.count(">") and tail.count("<") == tail.count(">")


def test_lines_are_packed_in_order_and_an_overlong_one_is_cut_in_its_middle():
    lines = ["short line"] * 400 + ["why: " + "y" * 4_000 + " the fix"]
    packed = pack(lines)
    assert all(len(text) <= 3_000 for text in packed)
    assert "\n".join(packed).count("short line") == 400 and packed[-1].endswith("y the fix")


def test_a_secret_is_masked_before_the_cut_so_no_part_of_it_survives():
    secret = "sk-live-" + "s" * 40
    text = "a" * 2_970 + secret + "b" * 3_000
    sent = outgoing(Message(text[:100], [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]), [secret])
    assert "sk-live" not in str(sent) and "ssss" not in str(sent)
    assert not block_problems(sent["blocks"])


def test_every_block_of_a_message_is_fitted_and_a_modal_input_never_carries_a_value_it_cannot_hold():
    blocks = [{"type": "header", "text": {"type": "plain_text", "text": "h" * 500}},
              {"type": "section", "fields": [{"type": "mrkdwn", "text": "f" * 3_000}] * 12},
              {"type": "context", "elements": [{"type": "mrkdwn", "text": "c" * 4_000}]},
              {"type": "actions", "elements": [{"type": "button", "action_id": "a", "value": "1",
                                                "text": {"type": "plain_text", "text": "b" * 100}}]},
              *({"type": "section", "text": {"type": "mrkdwn", "text": "s"}} for _ in range(60))]
    sent = outgoing(Message("fallback", blocks), [])
    assert not block_problems(sent["blocks"]) and len(sent["blocks"]) == 50
    assert "more parts, left out" in sent["blocks"][-1]["text"]["text"]
    view = fit_view({"type": "modal", "title": {"type": "plain_text", "text": "A title far too long for Slack"},
                     "blocks": [{"type": "input", "element": {"type": "plain_text_input", "action_id": "t",
                                                              "initial_value": "v" * 3_001}}]})
    assert len(view["title"]["text"]) <= 24 and "initial_value" not in view["blocks"][0]["element"]
    assert "3,001 characters" in view["blocks"][1]["elements"][0]["text"]
