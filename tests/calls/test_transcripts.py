from __future__ import annotations

from judgelab.calls import transcripts as tx


def test_render_text_with_clock_and_tool_calls() -> None:
    turns = [
        {"role": "assistant", "content": "Hi", "start_time": 0.0},
        {"role": "customer", "content": "Hello", "start_time": 3725.0},
        {"role": "tool_call", "content": None, "tool_calls": [{"function": {"name": "lookup", "arguments": {"id": 1}}}]},
        {"role": "Supervisor", "content": "note"},
    ]
    assert tx.render_text(turns) == (
        "[00:00] Agent: Hi\n[1:02:05] User: Hello\nTool call: lookup({\"id\": 1})\nSupervisor: note"
    )


def test_text_turns_clock_formats_and_continuations() -> None:
    turns, errors = tx.text_turns("[01:02] Agent: hi\n[0:01:05.5] customer: yes\nand more\nBot: ok")
    assert not errors
    assert [(t["role"], t["start_time"]) for t in turns] == [("agent", 62.0), ("user", 65.5), ("agent", None)]
    assert turns[1]["content"] == "yes\nand more"
    assert tx.text_turns("no speakers here")[1][0].field == "transcript"


def test_native_turns_keep_extra_keys_and_coerce_content() -> None:
    turns, errors = tx.native_turns([{"role": "agent", "content": {"a": 1}, "sentiment": "neg", "start_time": 1}])
    assert not errors
    assert turns == [{"role": "agent", "content": '{"a": 1}', "sentiment": "neg", "start_time": 1.0, "end_time": None}]


def test_openai_turns_keep_tool_names_and_bad_arguments() -> None:
    turns, system, errors = tx.openai_turns([
        {"role": "system", "content": "policy"},
        {"role": "assistant", "content": "", "tool_calls": [{"id": "1", "function": {"name": "f", "arguments": "{oops"}}]},
        {"role": "tool", "tool_call_id": "1", "content": "r"},
        {"role": "user", "content": [{"type": "text", "text": "parts"}]},
        {"role": "wizard", "content": "?"},
    ])
    assert system == "policy"
    assert turns[0]["arguments"] == "{oops" and turns[1]["tool_name"] == "f" and turns[2]["content"] == "parts"
    assert errors[0].field == "transcript_json[4].role"


def test_transcript_type_aliases() -> None:
    assert tx.canonical_transcript_type(None) == "native"
    assert tx.canonical_transcript_type("Cekura") == "native"
    assert tx.canonical_transcript_type("messages") == "openai"
    assert tx.canonical_transcript_type("zoom") is None and tx.canonical_transcript_type("11labs") == "elevenlabs"
