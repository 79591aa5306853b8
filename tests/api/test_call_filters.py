"""The calls list filtered by a metric's verdict, by feedback and by reviewer, and sorted by time."""

from __future__ import annotations

from typing import Any

from judgelab.db import Database
from tests.conftest import Api, add_result

L = "/observability/v1/call-logs-external/"


def _ids(api: Api, **params: Any) -> list[str]:
    r = api.get(L, params={"page_size": 200, **params})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["count"] == len(body["results"])  # the exact count uses the same filters
    return [c["call_id"] for c in body["results"]]


def test_filters_by_verdict_feedback_reviewer_and_sort(api: Api, db: Database) -> None:
    from judgelab.db.models import Metric, MetricResult

    agent = api.agent()
    calls = {name: api.call(agent, name, f"text {name}", timestamp=f"2026-01-0{n + 1}T00:00:00Z")["id"]
             for n, name in enumerate(["p1", "p2", "f1", "na", "err"])}
    metric = api.metric("confirms")["id"]
    other = api.metric("other")["id"]
    for name, value in {"p1": True, "p2": True, "f1": False, "na": None}.items():
        add_result(db, calls[name], metric, value)
    with db.session() as s:
        m = s.get(Metric, metric)
        assert m is not None
        s.add(MetricResult(project_id=m.project_id, call_log_id=calls["err"], metric_id=metric,
                           metric_version_id=m.current.id, value=None, explanation="", extra={}, error="model timeout"))
    add_result(db, calls["f1"], other, True)
    api.post(f"/observability/v1/call-logs-external/{calls['p2']}/mark_metric_vote/",
             json={"metric_id": metric, "vote": "disagree", "expected_value": False, "feedback": "no yes", "reviewer": "ana"})
    api.post(f"/observability/v1/call-logs-external/{calls['p1']}/mark_metric_vote/",
             json={"metric_id": metric, "vote": "agree", "feedback": "right", "reviewer": "bo"})
    api.post(f"/observability/v1/call-logs-external/{calls['f1']}/mark_metric_vote/",
             json={"metric_id": other, "vote": "agree", "feedback": "right", "reviewer": "ana"})

    assert _ids(api, metric=metric, verdict="pass") == ["p2", "p1"]  # newest first
    assert _ids(api, metric=metric, verdict="pass", sort="timestamp") == ["p1", "p2"]
    assert _ids(api, metric=metric, verdict="fail") == ["f1"]
    assert _ids(api, metric=metric, verdict="na") == ["na"]
    assert _ids(api, metric=metric, verdict="error") == ["err"]
    assert _ids(api, metric=other, verdict="pass") == ["f1"]
    assert _ids(api, metric=metric, has_feedback="true") == ["p2", "p1"]
    assert _ids(api, metric=metric, has_feedback="false") == ["err", "na", "f1"]
    assert _ids(api, has_feedback="true") == ["f1", "p2", "p1"]  # on any metric
    assert _ids(api, reviewer="ana") == ["f1", "p2"] and _ids(api, metric=metric, reviewer="ana") == ["p2"]
    assert _ids(api, metric=metric, feedback="disagree") == ["p2"]
    assert _ids(api, metric=metric, verdict="pass", feedback="agree") == ["p1"]
    # A new version: the old version's results are not its verdicts.
    assert api.patch(f"/test_framework/v1/metrics/{metric}/", json={"description": "Pass on an explicit yes."}).status_code == 200
    assert _ids(api, metric=metric, verdict="pass") == []
    assert _ids(api, metric=metric, has_feedback="true") == ["p2", "p1"]  # votes stay

    bad = api.get(L, params={"metric": metric, "verdict": "maybe"})
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "verdict"
    assert api.get(L, params={"verdict": "pass"}).json()["errors"][0]["field"] == "metric"
    assert api.get(L, params={"metric": 99999, "verdict": "pass"}).status_code == 404
    assert api.get(L, params={"feedback": "meh"}).json()["errors"][0]["field"] == "feedback"
    assert api.get(L, params={"sort": "likely"}).json()["errors"][0]["field"] == "sort"


def test_most_likely_wrong_first(api: Api, db: Database) -> None:
    agent = api.agent()
    metric = api.metric("confirms")["id"]
    hedged = api.call(agent, "h", "User: go ahead I guess", timestamp="2026-01-01T00:00:00Z")["id"]
    clear = api.call(agent, "c", "User: yes", timestamp="2026-01-02T00:00:00Z")["id"]
    add_result(db, hedged, metric, False, "It seems the customer may have agreed, possibly a yes.")
    add_result(db, clear, metric, True, "The customer said yes.")
    assert _ids(api) == ["c", "h"]  # newest first
    assert _ids(api, metric=metric, sort="likely_wrong") == ["h", "c"]
    assert api.get(L, params={"sort": "likely_wrong"}).json()["errors"][0]["field"] == "metric"
