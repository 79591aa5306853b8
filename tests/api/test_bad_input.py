"""Malformed requests get a 4xx that names the field, change nothing, and never a 500."""

from __future__ import annotations

import json

import pytest

from tests.conftest import Api

CALLS = "/observability/v1/call-logs-external/"


def _count(api: Api) -> int:
    return int(api.get(CALLS).json()["count"])


def test_page_size_limits(api: Api) -> None:
    r = api.get(CALLS, params={"page_size": 201})
    assert r.status_code == 400
    assert r.json()["errors"][0]["field"] == "page_size" and "200" in r.json()["detail"]
    assert api.get(CALLS, params={"page_size": 200}).status_code == 200
    assert api.get(CALLS, params={"page_size": 0}).status_code == 400
    assert api.get(CALLS, params={"page": 0}).status_code == 400
    r = api.get(CALLS, params={"page_size": "ten"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "page_size"
    for url in ("/test_framework/v1/metrics/", "/test_framework/test-sets/", "/api/v1/agents/"):
        assert api.get(url, params={"page_size": 500}).status_code == 400, url


def test_bad_query_values(api: Api) -> None:
    assert api.get(CALLS, params={"timestamp__gte": "yesterday"}).status_code == 422
    r = api.get(CALLS, params={"timestamp__gte": "2024-02-01", "timestamp__lte": "2024-01-01"})
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "timestamp__gte"
    # A bound without a zone is UTC, so it compares with one that has a zone.
    r = api.get(CALLS, params={"timestamp__gte": "2024-02-01T00:00:00", "timestamp__lte": "2024-01-01T00:00:00+05:00"})
    assert r.status_code == 400
    r = api.get(CALLS, params={"timestamp__gte": "2024-01-01T00:00:00", "timestamp__lte": "2024-02-01T00:00:00+05:00"})
    assert r.status_code == 200
    assert api.get(CALLS, params={"agent": 99}).status_code == 404
    assert api.get(CALLS, params={"agent": 2**40}).status_code == 422
    assert api.get(CALLS, params={"search": "!!!"}).status_code == 400
    assert api.get(CALLS, params={"search": " ".join(["w"] * 40)}).status_code == 400
    assert api.get(f"{CALLS}{2**40}/").status_code == 422
    assert api.get(f"{CALLS}abc/").status_code == 422
    assert api.get(f"{CALLS}0/").status_code == 422
    assert api.get(f"{CALLS}12345/").status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"transcript": "User: hi"}, "agent"),
        ({"agent": "AGENT", "transcript_json": "not json"}, "transcript_json"),
        ({"agent": "AGENT", "transcript_json": {"role": "user"}}, "transcript_json"),
        ({"agent": "AGENT", "transcript_json": [{"content": "no role"}]}, "transcript_json[0].role"),
        ({"agent": "AGENT", "transcript_json": [{"role": "user", "content": True}]}, "transcript_json[0].content"),
        ({"agent": "AGENT", "transcript_json": [{"role": "user", "content": "x", "start_time": "soon"}]}, "transcript_json[0].start_time"),
        ({"agent": "AGENT", "transcript_json": [{"role": "user", "content": "x", "end_time": -2}]}, "transcript_json[0].end_time"),
        ({"agent": "AGENT", "transcript_json": []}, None),
        ({"agent": "AGENT", "transcript_type": "zoom", "transcript": "User: x"}, "transcript_type"),
        ({"agent": "AGENT", "transcript_type": "vapi", "transcript": "User: x"}, "transcript_json"),
        ({"agent": "AGENT", "transcript": "hello there"}, "transcript"),
        ({"agent": "AGENT", "transcript_type": "text", "transcript_json": [{"role": "user", "content": "x"}]}, "transcript"),
        ({"agent": "AGENT", "transcript": "User: x", "metadata": [1, 2]}, "metadata"),
        ({"agent": "AGENT", "transcript": "User: x", "dynamic_variables": "x"}, "dynamic_variables"),
        ({"agent": "AGENT", "transcript": "User: x", "duration": "long"}, "duration"),
        ({"agent": "AGENT", "transcript": "User: x", "duration": -1}, "duration"),
        ({"agent": "AGENT", "transcript": "User: x", "timestamp": "tuesday"}, "timestamp"),
        ({"agent": "AGENT", "transcript": "User: x", "call_id": "x" * 201}, "call_id"),
        ({"agent": "AGENT", "transcript": "User: x", "call_ended_reason": "r" * 300}, "call_ended_reason"),
        ({"agent": "AGENT", "transcript": "User: \u0000 nul"}, "transcript_json"),
        ({"agent": "AGENT", "transcript": "User: x", "call_id": "a\u0000b"}, "call_id"),
        ({"agent": "AGENT", "transcript": "User: x", "metadata": {"k": "\u0000"}}, "metadata"),
        ({"agent": "AGENT", "transcript": "User: x", "metadata": {"big": "y" * 300_000}}, "metadata"),
        ({"agent": 2**40, "transcript": "User: x"}, "agent"),
        ({"agent": 424242, "transcript": "User: x"}, "agent"),
    ],
)
def test_observe_rejects_bad_calls(api: Api, body: dict, field: str | None) -> None:
    api.agent("AGENT")
    r = api.post("/observability/v1/observe/", json=body)
    if field is None:  # an empty transcript is a legitimate (silent) call
        assert r.status_code == 201, r.text
        return
    assert 400 <= r.status_code < 500, r.text
    assert r.status_code != 404
    fields = [e["field"] for e in r.json()["errors"]]
    assert field in fields, r.json()
    assert _count(api) == 0


def test_transcript_size_limit(api: Api) -> None:
    agent = api.agent()
    limit = api.client.app.state.settings.max_transcript_chars
    r = api.post("/observability/v1/observe/", json={"agent": agent, "transcript": "User: " + "a" * limit})
    assert r.status_code == 400 and "limit" in r.json()["detail"] and str(limit) in r.json()["detail"]
    turns = [{"role": "user", "content": "x"}] * 5001
    r = api.post("/observability/v1/observe/", json={"agent": agent, "transcript_json": turns})
    assert r.status_code == 400 and "5000" in r.json()["detail"]
    assert _count(api) == 0


def test_non_json_and_non_finite_bodies(api: Api) -> None:
    agent = api.agent()
    r = api.post("/observability/v1/observe/", content=b"{nope", headers={"content-type": "application/json"})
    assert r.status_code == 422 and "not valid JSON" in r.json()["detail"]
    r = api.post("/observability/v1/observe/", content=b"[1,2]", headers={"content-type": "application/json"})
    assert r.status_code == 422
    raw = '{"agent": %d, "transcript": "User: x", "duration": NaN}' % agent
    r = api.post("/observability/v1/observe/", content=raw.encode(), headers={"content-type": "application/json"})
    assert r.status_code in (400, 422)
    raw = '{"agent": %d, "transcript": "User: x", "metadata": {"x": Infinity}}' % agent
    r = api.post("/observability/v1/observe/", content=raw.encode(), headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "metadata"
    deep = "[" * 100_000 + "]" * 100_000
    r = api.post("/observability/v1/observe/", content=deep.encode(), headers={"content-type": "application/json"})
    assert 400 <= r.status_code < 500
    r = api.post("/api/v1/call-logs/import/", content=b"\xff\xfe")
    assert r.status_code == 400
    r = api.post("/api/v1/call-logs/import/", content=b"\n\n")
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "body"
    r = api.post("/api/v1/call-logs/import/", content=b"[1]")
    assert r.status_code == 400 and r.json()["errors"][0]["line"] == 1
    assert _count(api) == 0


def test_oversized_body_is_413(api: Api) -> None:
    r = api.post("/test_framework/v1/metrics/", content=b"x" * 20_000_001, headers={"content-type": "application/json"})
    assert r.status_code == 413 and "limit" in r.json()["detail"]


def test_unknown_routes_and_methods(api: Api) -> None:
    assert api.get("/observability/v1/nothing/").status_code == 404
    r = api.client.put("/test_framework/v1/metrics/", headers=api.headers)
    assert r.status_code == 405 and "method" in r.json()["detail"]


def test_import_line_report_names_every_bad_line(api: Api) -> None:
    api.agent("A")
    good = json.dumps({"transcript": "User: hi"})
    body = "\n".join([good, json.dumps({"transcript_json": [{"role": 5}]}), good, json.dumps("string"), good])
    r = api.post("/api/v1/call-logs/import/", params={"agent": "A"}, content=body)
    assert r.status_code == 400
    assert [(e["line"], e["field"]) for e in r.json()["errors"]] == [(2, "transcript_json[0].role"), (4, "")]
    assert _count(api) == 0
