"""Chat examples from JSONL lines and stored completions, and the rows a run takes from them."""

from __future__ import annotations

import json

import pytest

from bot.core.errors import DatasetError
from bot.data.chat_examples import ChatExample, Unusable, line_list, parse_jsonl
from bot.data.imports import chat_data, label_of

LIMITS = {"max_bytes": 1_000_000, "max_rows": 100}


def _parse(*lines: object) -> tuple[list[ChatExample], list[Unusable]]:
    data = "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines).encode()
    parsed = parse_jsonl(data, "x.jsonl", **LIMITS)
    return parsed.examples, parsed.unusable


def test_the_three_shapes_give_the_same_example_with_what_each_says_about_it():
    request = [{"role": "developer", "content": "Sort tickets."}, {"role": "user", "content": "charged twice"}]
    reply = {"role": "assistant", "content": '{"label":"Billing"}'}
    examples, unusable = _parse(
        {"messages": [*request, reply]},
        {"messages": request, "choices": [{"index": 0, "message": reply}], "model": "gpt-6.2-sol",
         "created": 1795000000, "metadata": {"app": "helpdesk"}},
        {"request": {"model": "gpt-4o", "messages": request, "metadata": {"app": "x"}},
         "response": {"model": "gpt-4o-2024-08-06", "created": 7, "choices": [{"message": reply}]}},
    )
    assert unusable == []
    assert {(e.system, e.user, e.answer) for e in examples} == {
        ("Sort tickets.", "charged twice", '{"label":"Billing"}')}
    assert [(e.where, e.model, e.created, e.metadata) for e in examples] == [
        ("line 1", None, None, {}), ("line 2", "gpt-6.2-sol", 1795000000, {"app": "helpdesk"}),
        ("line 3", "gpt-4o-2024-08-06", 7, {"app": "x"})]


def test_text_parts_are_joined_and_other_parts_are_named():
    examples, unusable = _parse(
        {"messages": [{"role": "user", "content": [{"type": "text", "text": "charged "},
                                                   {"type": "text", "text": "twice"}]},
                      {"role": "assistant", "content": [{"type": "text", "text": "Billing"}]}]},
        {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]},
                      {"role": "assistant", "content": "Billing"}]},
        {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": None,
                                                         "tool_calls": [{"id": "t"}]}]},
        "",
        "[1, 2]",
    )
    assert [(e.user, e.answer) for e in examples] == [("charged twice", "Billing")]
    assert unusable == [Unusable("line 2", "the user message has a part of type image_url: only text is distilled"),
                        Unusable("line 3", "the assistant's reply has no text (a refusal or a tool call)"),
                        Unusable("line 5", "the line is not a JSON object")]


def test_a_file_without_any_usable_example_is_refused_with_the_first_reasons():
    with pytest.raises(DatasetError, match=r"no usable chat example \(line 1: not JSON"):
        _parse("{oops", "{}")
    with pytest.raises(DatasetError, match="not UTF-8 text"):
        parse_jsonl(b"\xff\xfe{}", "x.jsonl", **LIMITS)
    with pytest.raises(DatasetError, match="over the 1 MB limit"):
        parse_jsonl(b" " * 1_000_001, "x.jsonl", **LIMITS)


def test_line_lists_are_compact():
    assert line_list([Unusable(f"line {n}", "") for n in (3, 7, 8, 9, 12)]) == "lines 3, 7-9, 12"
    assert line_list([Unusable("line 4", "")]) == "line 4"


def test_labels_are_read_from_the_bots_answer_json_or_the_text():
    assert label_of('{"label":"Billing"}') == "Billing"
    assert label_of("  Network \n") == "Network"
    assert label_of('{"answer": "x"}') == '{"answer": "x"}'


def test_rows_keep_one_example_per_normalized_input_the_newest_and_the_shared_system_prompt():
    def example(where: str, user: str, answer: str, created: int, system: str | None = "Sort.") -> ChatExample:
        return ChatExample(where, system, user, answer, "gpt-4o", created)

    data = chat_data([example("a", "Charged  twice", "Billing", 1), example("b", "charged twice", "Refund", 5),
                      example("c", "VPN down", "Network", 3), example("d", "printer", "Hardware", 4, "Other.")],
                     [Unusable("line 9", "not JSON")])
    assert data.system == "Sort."
    assert [(r["input"], r["answer"], r["source"]) for r in data.rows] == [("VPN down", "Network", "c"),
                                                                          ("charged twice", "Refund", "b")]
    assert data.duplicates == 1
    assert [u.where for u in data.unusable] == ["d", "line 9"]
    assert "differs from the one most examples share" in data.unusable[0].reason
