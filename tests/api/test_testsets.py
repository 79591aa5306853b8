from __future__ import annotations

from tests.conftest import Api

T = "/test_framework/test-sets/"


def test_create_from_call_log_freezes_the_call(api: Api) -> None:
    agent = api.agent()
    call = api.call(agent, "frozen", metadata={"v": 1})
    metric = api.metric()
    r = api.post(f"{T}create_from_call_log/", json={
        "call_log_id": call["id"],
        "metrics": [{"metric": metric["id"], "feedback": "The metric failed this call wrongly", "expected_value": True}],
    })
    assert r.status_code == 201, r.text
    ts = r.json()
    assert ts["call_log_id"] == call["id"] and ts["metrics"][0]["expected_value"] is True
    api.call(agent, "frozen", "something else entirely", metadata={"v": 2})  # the live call changes...
    detail = api.get(f"{T}{ts['id']}/").json()
    assert detail["metadata"] == {"v": 1} and "change my flight" in detail["transcript"]  # ...the test set does not
    assert api.get(T).json()["count"] == 1
    assert api.get(T, params={"metric": metric["id"]}).json()["count"] == 1
    other = api.metric("other")
    assert api.get(T, params={"metric": other["id"]}).json()["count"] == 0


def test_bare_metric_ids_get_a_422_that_explains(api: Api) -> None:
    agent = api.agent()
    call = api.call(agent)
    metric = api.metric()
    r = api.post(f"{T}create_from_call_log/", json={"call_log_id": call["id"], "metrics": [metric["id"]]})
    assert r.status_code == 422
    body = r.json()
    assert body["errors"][0]["field"] == "metrics"
    assert 'metrics must be a list of {"metric": id, "feedback": text} objects' in body["detail"]
    assert api.get(T).json()["count"] == 0


def test_test_set_bad_references(api: Api) -> None:
    agent = api.agent()
    call = api.call(agent)
    metric = api.metric()
    r = api.post(f"{T}create_from_call_log/", json={"call_log_id": 424242, "metrics": [{"metric": metric["id"]}]})
    assert r.status_code == 404 and r.json()["errors"][0]["field"] == "call_log_id"
    r = api.post(f"{T}create_from_call_log/", json={"call_log_id": call["id"], "metrics": [{"metric": 77}]})
    assert r.status_code == 404 and r.json()["errors"][0]["field"] == "metrics[0].metric"
    r = api.post(f"{T}create_from_call_log/", json={"call_log_id": call["id"], "metrics": []})
    assert r.status_code == 422
    r = api.post(f"{T}create_from_call_log/", json={
        "call_log_id": call["id"], "metrics": [{"metric": metric["id"], "expected_value": "sometimes"}]})
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "metrics[0].expected_value"
    assert api.get(f"{T}999/").status_code == 404
    assert api.get(T).json()["count"] == 0
