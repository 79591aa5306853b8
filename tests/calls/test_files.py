from __future__ import annotations

import json
from pathlib import Path

import pytest

from judgelab.calls.files import read_calls
from judgelab.errors import InvalidInput
from tests.conftest import AIRLINE


def test_airline_file_reads_as_openai_with_reward_kept() -> None:
    assert AIRLINE.exists(), "the sample conversations ship in src/judgelab/demo/data"
    fmt, payloads, errors = read_calls(AIRLINE)
    assert fmt == "openai" and not errors and len(payloads) == 200
    first = payloads[0][1]
    assert first["call_id"] == "task-0-trial-0" and first["transcript_type"] == "openai"
    assert first["metadata"]["reward"] == 0.0 and "info" not in first["metadata"]


def test_detects_jsonl_text_and_bare_message_lists(tmp_path: Path) -> None:
    p = tmp_path / "calls.jsonl"
    p.write_text(json.dumps({"call_id": "1", "transcript": "User: hi"}) + "\n\n" + json.dumps({"call_id": "2"}) + "\n")
    fmt, payloads, _ = read_calls(p)
    assert fmt == "jsonl" and [n for n, _ in payloads] == [1, 3]
    t = tmp_path / "call.log"
    t.write_text("Agent: hello\nUser: hi\n---\nAgent: second call\n")
    fmt, payloads, _ = read_calls(t)
    assert fmt == "text" and [p["call_id"] for _, p in payloads] == ["call-1", "call-2"]
    m = tmp_path / "conv.json"
    m.write_text(json.dumps([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]))
    fmt, payloads, _ = read_calls(m)
    assert fmt == "openai" and len(payloads) == 1 and payloads[0][1]["call_id"].startswith("conv-")
    again = read_calls(m)[1][0][1]["call_id"]
    assert again == payloads[0][1]["call_id"]  # content-derived ids make re-imports idempotent


def test_unreadable_files(tmp_path: Path) -> None:
    b = tmp_path / "x.bin"
    b.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(InvalidInput):
        read_calls(b)
    u = tmp_path / "x.dat"
    u.write_text("just some words")
    with pytest.raises(InvalidInput, match="--format"):
        read_calls(u)
    with pytest.raises(InvalidInput, match="format"):
        read_calls(u, "csv")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"a": 1}\n{oops\n')
    assert read_calls(bad, "jsonl")[2][0].line == 2
