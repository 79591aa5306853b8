"""Reading call files for `judgelab import`: native JSONL, OpenAI message lists, plain text.

Each reader yields (line or record number, payload) where the payload has the shape of an
`observe` request, so files and the HTTP API share one validation path.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from judgelab.calls.transcripts import looks_like_text_transcript
from judgelab.errors import FieldError, InvalidInput

FORMATS = ("auto", "jsonl", "openai", "text")
# Fields of an OpenAI-style record kept as metadata; the rest (e.g. tau-bench's `info`, which holds
# the grader's answer key) is left out so judges cannot read the answer.
_OPENAI_META_KEYS = ("task_id", "trial", "reward", "id", "name", "tags")


def detect_format(path: Path, head: str) -> str:
    if path.suffix.lower() in (".txt", ".text"):
        return "text"
    stripped = head.lstrip()
    if stripped.startswith("["):
        return "openai"
    if stripped.startswith("{"):
        first = stripped.splitlines()[0]
        try:
            record = json.loads(first)
        except json.JSONDecodeError:
            try:
                record = json.loads(stripped)  # one pretty-printed object
            except json.JSONDecodeError:
                return "jsonl"
        if isinstance(record, dict) and ("traj" in record or "messages" in record):
            return "openai"
        return "jsonl"
    if looks_like_text_transcript(head):
        return "text"
    raise InvalidInput("format", f"cannot tell the format of {path.name}; pass --format jsonl, openai or text")


def read_calls(path: Path, fmt: str = "auto") -> tuple[str, list[tuple[int, Any]], list[FieldError]]:
    """(format used, payloads with their line/record numbers, parse errors)."""
    if fmt not in FORMATS:
        raise InvalidInput("format", f"expected one of {', '.join(FORMATS)}, got {fmt!r}")
    try:
        # A .gz file is read as the file it compresses (the shipped sample data is one).
        raw = gzip.decompress(path.read_bytes()) if path.suffix.lower() == ".gz" else path.read_bytes()
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput("file", f"{path} is not UTF-8 text (byte {exc.start})") from None
    except (OSError, EOFError) as exc:
        raise InvalidInput("file", f"{path} cannot be read: {exc}") from None
    if path.suffix.lower() == ".gz":
        path = path.with_suffix("")
    if fmt == "auto":
        fmt = detect_format(path, text[:65536])
    if fmt == "jsonl":
        return fmt, *_read_jsonl(text)
    if fmt == "openai":
        return fmt, *_read_openai(text, path)
    return fmt, *_read_text(text, path)


def parse_jsonl(text: str) -> Iterator[tuple[int, Any]]:
    """(line number, parsed object) per non-blank line; a line that is not JSON yields a FieldError."""
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield number, orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            yield number, FieldError("", f"not valid JSON ({str(exc).split(':')[0]})", number)


def _read_jsonl(text: str) -> tuple[list[tuple[int, Any]], list[FieldError]]:
    out: list[tuple[int, Any]] = []
    errors: list[FieldError] = []
    for number, value in parse_jsonl(text):
        if isinstance(value, FieldError):
            errors.append(value)
        else:
            out.append((number, value))
    return out, errors


def _read_openai(text: str, path: Path) -> tuple[list[tuple[int, Any]], list[FieldError]]:
    stripped = text.lstrip()
    try:
        data = json.loads(stripped)
        records = data if isinstance(data, list) else [data]
        # A bare message list (one conversation) rather than a list of records.
        if records and all(isinstance(r, dict) and "role" in r for r in records):
            records = [records]
        numbered = list(enumerate(records, start=1))
    except json.JSONDecodeError:
        lines, errors = _read_jsonl(text)
        if errors:
            return [], errors
        numbered = lines
    out = []
    for number, record in numbered:
        out.append((number, openai_record_to_payload(record, path.stem, number)))
    return out, []


def openai_record_to_payload(record: Any, stem: str, number: int) -> Any:
    messages: Any
    meta: dict[str, Any]
    if isinstance(record, list):
        messages, meta = record, {}
    elif isinstance(record, dict):
        messages = record.get("traj", record.get("messages"))
        meta = {k: record[k] for k in _OPENAI_META_KEYS if k in record}
    else:
        return record  # let validation name the problem
    if isinstance(record, dict) and record.get("call_id") is not None:
        call_id = str(record["call_id"])
    elif "task_id" in meta and "trial" in meta:
        call_id = f"task-{meta['task_id']}-trial-{meta['trial']}"
    else:
        # Content-derived, so importing the same file twice updates rather than duplicates.
        digest = hashlib.sha256(json.dumps(messages, sort_keys=True, default=str).encode()).hexdigest()[:16]
        call_id = f"{stem}-{digest}"
    payload: dict[str, Any] = {"call_id": call_id, "transcript_type": "openai", "transcript_json": messages, "metadata": meta}
    if isinstance(record, dict):
        for key in ("agent", "timestamp", "call_ended_reason", "duration", "dynamic_variables"):
            if key in record:
                payload[key] = record[key]
    return payload


def _read_text(text: str, path: Path) -> tuple[list[tuple[int, Any]], list[FieldError]]:
    """One call per file, or several separated by a line of three dashes."""
    out = []
    chunk: list[str] = []
    start = 1
    index = 0

    def flush() -> None:
        nonlocal index
        body = "\n".join(chunk).strip()
        if body:
            index += 1
            out.append((start, {"call_id": f"{path.stem}-{index}", "transcript_type": "text", "transcript": body}))

    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip() == "---":
            flush()
            chunk, start = [], number + 1
        else:
            chunk.append(line)
    flush()
    return out, []


def export_lines(records: Iterator[dict[str, Any]]) -> Iterator[str]:
    for record in records:
        yield json.dumps(record, ensure_ascii=False) + "\n"
