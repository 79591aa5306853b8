from __future__ import annotations

import json

from tests.conftest import Api, add_result


def test_observe_creates_then_updates_by_call_id(api: Api) -> None:
    agent = api.agent()
    first = api.call(agent, "abc-1", metadata={"region": "eu"})
    assert first["created"] is True
    assert first["call_id"] == "abc-1"
    assert first["transcript"].startswith("[00:00] Agent: Thanks for calling")
    assert first["duration"] == 6.0  # from the last turn's end
    r = api.post("/observability/v1/observe/", json={"agent": agent, "call_id": "abc-1", "call_ended_reason": "hangup"})
    assert r.status_code == 200, r.text
    updated = r.json()
    assert updated["id"] == first["id"] and updated["created"] is False
    assert updated["call_ended_reason"] == "hangup"
    assert updated["metadata"] == {"region": "eu"}  # fields not re-sent keep their values
    assert api.get("/observability/v1/call-logs-external/").json()["count"] == 1


def test_observe_accepts_agent_name_extras_and_string_transcripts(api: Api) -> None:
    api.agent("booking")
    r = api.post(
        "/observability/v1/observe/",
        json={
            "agent": "booking",
            "transcript_type": "cekura",
            "transcript_json": json.dumps([{"role": "assistant", "content": "Hi"}, {"role": "user", "content": "Yo"}]),
            "customer_tier": "gold",
            "metadata": {"customer_tier": "silver"},
            "dynamic_variables": {"name": "Ann"},
            "timestamp": "2024-05-01T10:00:00+02:00",
        },
    )
    assert r.status_code == 201, r.text
    call = r.json()
    assert call["metadata"] == {"customer_tier": "silver", "extra_fields": {"customer_tier": "gold"}}
    assert call["timestamp"] == "2024-05-01T08:00:00+00:00"
    assert call["transcript"] == "Agent: Hi\nUser: Yo"
    assert len(call["call_id"]) == 32  # generated when absent


def test_observe_text_and_openai_transcripts(api: Api) -> None:
    agent = api.agent()
    r = api.post(
        "/observability/v1/observe/",
        json={"agent": agent, "transcript_type": "text", "transcript": "[00:01] Agent: Hello\nUser: hi\nthere"},
    )
    assert r.status_code == 201, r.text
    turns = r.json()["transcript_json"]
    assert [t["role"] for t in turns] == ["agent", "user"]
    assert turns[0]["start_time"] == 1.0 and turns[1]["content"] == "hi\nthere"
    r = api.post(
        "/observability/v1/observe/",
        json={
            "agent": agent,
            "transcript_type": "openai",
            "transcript_json": [
                {"role": "system", "content": "Policy: be nice"},
                {"role": "user", "content": "cancel please"},
                {"role": "assistant", "content": None, "tool_calls": [
                    {"id": "t1", "type": "function", "function": {"name": "cancel", "arguments": "{\"id\": \"R1\"}"}}]},
                {"role": "tool", "tool_call_id": "t1", "content": "cancelled"},
                {"role": "assistant", "content": "Done."},
            ],
        },
    )
    assert r.status_code == 201, r.text
    call = r.json()
    assert call["agent_description"] == "Policy: be nice"
    assert [t["role"] for t in call["transcript_json"]] == ["user", "tool_call", "tool_result", "agent"]
    assert call["transcript_json"][1]["arguments"] == {"id": "R1"}
    assert call["transcript_json"][2]["tool_name"] == "cancel"
    assert 'Tool call: cancel({"id": "R1"})' in call["transcript"]


def test_list_filters_search_and_exact_count(api: Api) -> None:
    a1, a2 = api.agent("a1"), api.agent("a2")
    for i in range(7):
        api.call(a1, f"x{i}", "I want a refund for my baggage" if i % 2 else "Change my seat", timestamp=f"2024-05-0{i + 1}T12:00:00Z")
    api.call(a2, "y0", "refund refund", timestamp="2024-06-01T00:00:00Z")
    base = "/observability/v1/call-logs-external/"
    assert api.get(base).json()["count"] == 8
    assert api.get(base, params={"agent": a1}).json()["count"] == 7
    assert api.get(base, params={"agent_id": a2}).json()["count"] == 1
    assert api.get(base, params={"search": "refund"}).json()["count"] == 4
    assert api.get(base, params={"search": "REFUND baggage"}).json()["count"] == 3
    assert api.get(base, params={"search": "refund", "agent": a1}).json()["count"] == 3
    window = {"timestamp__gte": "2024-05-02T00:00:00Z", "timestamp__lte": "2024-05-04T23:59:59Z"}
    assert api.get(base, params=window).json()["count"] == 3
    assert api.get(base, params={"timestamp__gte": "2024-05-07"}).json()["count"] == 2
    page = api.get(base, params={"page_size": 3, "agent": a1}).json()
    assert page["count"] == 7 and len(page["results"]) == 3
    assert page["previous"] is None and "page=2" in page["next"]
    assert [c["call_id"] for c in page["results"]] == ["x6", "x5", "x4"]  # newest first
    last = api.get(base, params={"page_size": 3, "agent": a1, "page": 3}).json()
    assert [c["call_id"] for c in last["results"]] == ["x0"] and last["next"] is None and "page=2" in last["previous"]
    beyond = api.get(base, params={"page_size": 3, "page": 99}).json()
    assert beyond["results"] == [] and beyond["count"] == 8


def test_search_treats_operators_as_words(api: Api) -> None:
    agent = api.agent()
    api.call(agent, "q", 'He said "NEAR" OR AND* -x')
    r = api.get("/observability/v1/call-logs/", params={"search": 'NEAR OR "AND*'})
    assert r.status_code == 200, r.text
    assert r.json()["count"] == 1


def test_both_prefixes_and_trailing_slash_optional(api: Api) -> None:
    agent = api.agent()
    call = api.call(agent)
    for path in (
        f"/observability/v1/call-logs-external/{call['id']}/",
        f"/observability/v1/call-logs-external/{call['id']}",
        f"/observability/v1/call-logs/{call['id']}/",
        f"/observability/v1/call-logs/{call['id']}",
    ):
        r = api.get(path)
        assert r.status_code == 200 and r.json()["id"] == call["id"], path
    r = api.post("/observability/v1/observe", json={"agent": agent, "call_id": "no-slash", "transcript": "User: hi"})
    assert r.status_code == 201, r.text


def test_detail_shows_latest_result_per_metric(api: Api, db) -> None:
    agent = api.agent()
    call = api.call(agent)
    metric = api.metric()
    assert api.get(f"/observability/v1/call-logs-external/{call['id']}/").json()["evaluation"] == {"metrics": []}
    add_result(db, call["id"], metric["id"], False, "old")
    add_result(db, call["id"], metric["id"], True, "new")
    detail = api.get(f"/observability/v1/call-logs-external/{call['id']}/").json()
    [result] = detail["evaluation"]["metrics"]
    assert result["value"] is True and result["score"] == 5.0 and result["explanation"] == "new"
    assert result["name"] == "verified identity" and result["metric_version"] == 1
    listed = api.get("/observability/v1/call-logs-external/").json()["results"][0]
    assert listed["evaluation"]["metrics"][0]["explanation"] == "new"


def test_bulk_import_jsonl_all_or_nothing(api: Api) -> None:
    agent = api.agent("bulk")
    lines = [
        json.dumps({"call_id": f"b{i}", "transcript_json": [{"role": "user", "content": f"hello {i}"}]}) for i in range(5)
    ]
    r = api.post("/api/v1/call-logs/import/", params={"agent": "bulk"}, content="\n".join(lines))
    assert r.status_code == 200, r.text
    assert r.json()["created"] == 5 and len(r.json()["ids"]) == 5
    bad = lines[:2] + ["{not json", json.dumps({"call_id": "b9", "transcript_json": "oops"}),
                       json.dumps({"call_id": "b0", "agent": agent, "duration": -1})]
    r = api.post("/api/v1/call-logs/import/", params={"agent": agent}, content="\n".join(bad))
    assert r.status_code == 400
    errors = r.json()["errors"]
    assert [e["line"] for e in errors] == [3, 4, 5]
    assert "not valid JSON" in errors[0]["message"]
    assert errors[1]["field"] == "transcript_json"
    assert errors[2]["field"] == "duration"
    assert api.get("/observability/v1/call-logs-external/").json()["count"] == 5


def test_bulk_import_rejects_duplicate_call_ids_in_one_request(api: Api) -> None:
    api.agent("dup")
    line = json.dumps({"call_id": "same", "transcript": "User: hi"})
    r = api.post("/api/v1/call-logs/import/", params={"agent": "dup"}, content=f"{line}\n{line}\n")
    assert r.status_code == 400
    [err] = r.json()["errors"]
    assert err["field"] == "call_id" and err["line"] == 2 and "line 1" in err["message"]
    assert api.get("/observability/v1/call-logs-external/").json()["count"] == 0


def test_bulk_import_updates_existing_and_needs_an_agent(api: Api) -> None:
    api.agent("upd")
    line = json.dumps({"call_id": "k", "transcript": "User: one"})
    assert api.post("/api/v1/call-logs/import/", params={"agent": "upd"}, content=line).json()["created"] == 1
    line2 = json.dumps({"call_id": "k", "transcript": "User: two"})
    out = api.post("/api/v1/call-logs/import/", params={"agent": "upd"}, content=line2).json()
    assert out["updated"] == 1 and out["created"] == 0
    calls = api.get("/observability/v1/call-logs-external/", params={"search": "two"}).json()
    assert calls["count"] == 1  # the search index follows updates
    assert api.get("/observability/v1/call-logs-external/", params={"search": "one"}).json()["count"] == 0
    r = api.post("/api/v1/call-logs/import/", content=line)
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "agent"
    r = api.post("/api/v1/call-logs/import/", params={"agent": "nobody"}, content=line)
    assert r.status_code == 400 and "no agent named 'nobody'" in r.json()["detail"]


def test_export_round_trips_through_import(api: Api, other_api: Api) -> None:
    agent = api.agent("exp")
    api.call(agent, "e1", metadata={"k": [1, 2]}, dynamic_variables={"x": "y"}, timestamp="2024-01-01T00:00:00Z")
    api.call(agent, "e2", call_ended_reason="customer-ended-call", voice_recording_url="https://rec/2.wav")
    exported = api.get("/api/v1/call-logs/export/").text
    assert len(exported.splitlines()) == 2
    other_api.agent("exp")
    r = other_api.post("/api/v1/call-logs/import/", content=exported)
    assert r.status_code == 200, r.text
    assert other_api.get("/api/v1/call-logs/export/").text == exported
    # Importing the same file again changes nothing either.
    assert other_api.post("/api/v1/call-logs/import/", content=exported).json()["updated"] == 2
    assert other_api.get("/api/v1/call-logs/export/").text == exported


def test_search_tokens_match_the_index_on_both_databases(api: Api) -> None:
    agent = api.agent()
    api.call(agent, "u1", "Please check user_id 42 at the Café Zürich")
    api.call(agent, "u2", "Nothing relevant here")
    for query, expected in (
        ("user_id", 1),  # the underscore splits words for both indexes: never a phrase query
        ("CAFÉ", 1),
        ("cafe", 0),  # accents count on both databases (PostgreSQL's `simple` parser keeps them)
        ("zürich 42", 1),
        ("café's", 0),  # "café" and "s": no call holds a lone "s"
        ("agent-nonexistent", 0),
    ):
        r = api.get("/observability/v1/call-logs-external/", params={"search": query})
        assert r.status_code == 200, (query, r.text)
        assert r.json()["count"] == expected, query
