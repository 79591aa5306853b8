from __future__ import annotations

from tests.conftest import Api, add_result


def _vote(api: Api, call_id: int, **body):
    return api.post(f"/observability/v1/call-logs-external/{call_id}/mark_metric_vote/", json=body)


def test_vote_history_and_one_current_vote_per_reviewer(api: Api, db) -> None:
    agent = api.agent()
    call = api.call(agent)
    metric = api.metric()
    add_result(db, call["id"], metric["id"], False)
    r = _vote(api, call["id"], metric_id=metric["id"], vote="disagree",
              feedback="At 00:03 the agent asked for the booking code, which verifies identity. Should be TRUE.",
              expected_value="true")
    assert r.status_code == 201, r.text
    first = r.json()
    assert first["expected_value"] is True and first["result_value"] is False and first["warnings"] == []
    r = _vote(api, call["id"], metric_id=metric["id"], thumbs_up=True)
    assert r.status_code == 201
    assert r.json()["vote"] == "agree" and r.json()["label"] is False
    _vote(api, call["id"], metric_id=metric["id"], vote="agree", reviewer="maria")
    fb = api.get(f"/test_framework/v1/metrics/{metric['id']}/feedback/").json()
    assert fb["count"] == 2 and {f["reviewer"] for f in fb["results"]} == {"acme tests", "maria"}
    history = api.get(f"/test_framework/v1/metrics/{metric['id']}/feedback/", params={"include_history": True}).json()
    assert history["count"] == 3
    old = next(f for f in history["results"] if f["id"] == first["id"])
    assert old["is_current"] is False and old["superseded_at"] is not None


def test_progress_counts_and_ready_for_labs(api: Api, db) -> None:
    agent = api.agent()
    metric = api.metric()
    for i in range(6):
        call = api.call(agent, f"p{i}")
        add_result(db, call["id"], metric["id"], i % 2 == 0)
        progress = api.get(f"/test_framework/v1/metrics/{metric['id']}/feedback/").json()["progress"]
        assert progress["ready_for_labs"] is False and progress["remaining_for_labs"] == 6 - i
        if i < 3:
            _vote(api, call["id"], metric_id=metric["id"], vote="agree")
        elif i < 5:
            _vote(api, call["id"], metric_id=metric["id"], vote="disagree", feedback="wrong because at 00:03 ...")
        else:
            _vote(api, call["id"], metric_id=metric["id"], vote="disagree", expected_value="N/A", feedback="not applicable")
    progress = api.get(f"/test_framework/v1/metrics/{metric['id']}/feedback/").json()["progress"]
    assert progress["total"] == 6 and progress["agree"] == 3 and progress["disagree"] == 3
    # agree on pass/fail/pass -> 2 pass 1 fail; disagree flips fail(3)->pass, pass(4)->fail; 5 is N/A
    assert progress["expected"] == {"pass": 3, "fail": 2, "na": 1, "unknown": 0, "values": {}}
    assert progress["ready_for_labs"] is True and progress["remaining_for_labs"] == 0


def test_vote_validation(api: Api, db) -> None:
    agent = api.agent()
    call = api.call(agent)
    metric = api.metric()
    enum_metric = api.metric("kind", eval_type="enum", enum_values=["new_customer", "existing_customer"])
    cases = [
        ({"metric_id": metric["id"]}, 400, "vote"),
        ({"metric_id": metric["id"], "vote": "maybe"}, 400, "vote"),
        ({"metric_id": metric["id"], "vote": "agree"}, 400, "vote"),  # nothing to agree with yet
        ({"metric_id": metric["id"], "vote": "disagree", "thumbs_up": True}, 400, "thumbs_up"),
        ({"metric_id": metric["id"], "vote": "disagree", "expected_value": "purple"}, 400, "expected_value"),
        ({"metric_id": enum_metric["id"], "vote": "disagree", "expected_value": "vip"}, 400, "expected_value"),
        ({"metric_id": 999, "vote": "disagree"}, 404, "metric_id"),
        ({"metric_id": "abc", "vote": "disagree"}, 422, "metric_id"),
        ({"vote": "disagree"}, 422, "metric_id"),
    ]
    for body, status, field in cases:
        r = _vote(api, call["id"], **body)
        assert r.status_code == status, (body, r.text)
        assert r.json()["errors"][0]["field"] == field, (body, r.json())
    r = _vote(api, 999, metric_id=metric["id"], vote="disagree")
    assert r.status_code == 404
    ok = _vote(api, call["id"], metric_id=enum_metric["id"], vote="disagree", expected_value='"existing_customer"')
    assert ok.status_code == 201 and ok.json()["expected_value"] == "existing_customer"
    assert api.get(f"/test_framework/v1/metrics/{metric['id']}/feedback/").json()["count"] == 0


def test_feedback_quality_warnings(api: Api, db) -> None:
    agent = api.agent()
    call = api.call(agent)
    metric = api.metric()
    add_result(db, call["id"], metric["id"], True)
    r = _vote(api, call["id"], metric_id=metric["id"], vote="disagree", feedback="this is wrong")
    warnings = " ".join(r.json()["warnings"])
    assert "very short" in warnings and "cite the moment" in warnings and "expected_value" in warnings
    assert r.json()["label"] is False  # a disagree on a binary pass still means fail


def test_numeric_expected_values(api: Api) -> None:
    agent = api.agent()
    call = api.call(agent)
    metric = api.metric("politeness", eval_type="numeric")
    assert _vote(api, call["id"], metric_id=metric["id"], vote="disagree", expected_value="4.5").json()["expected_value"] == 4.5
    assert _vote(api, call["id"], metric_id=metric["id"], vote="disagree", expected_value=True).status_code == 400
