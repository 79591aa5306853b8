"""Where labels come from, the random audit sample, and the label bugs on the labs path."""

from __future__ import annotations

from tests.conftest import Api, add_result


def _vote(api: Api, call: int, metric: int, **body: object) -> object:
    return api.post(f"/observability/v1/call-logs-external/{call}/mark_metric_vote/", json={"metric_id": metric, **body})


def test_sources_are_recorded_checked_and_listed(api: Api, db) -> None:
    agent = api.agent()
    calls = [api.call(agent, f"c{i}")["id"] for i in range(6)]
    metric = api.metric()["id"]
    for c in calls:
        add_result(db, c, metric, c % 2 == 0)
    assert _vote(api, calls[0], metric, vote="agree").status_code == 201
    assert _vote(api, calls[1], metric, vote="agree", source="review_queue").status_code == 201
    bad = _vote(api, calls[2], metric, vote="agree", source="gut feeling")
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "source"
    undrawn = _vote(api, calls[2], metric, vote="agree", source="random_audit")
    assert undrawn.status_code == 400 and "audit sample" in undrawn.json()["detail"]
    sample = api.post(f"/api/v1/metrics/{metric}/audit_sample/", json={"size": 3, "seed": 11}).json()
    drawn = [e["call_log_id"] for e in sample["calls"]]
    assert len(drawn) == 3 and set(drawn) <= set(calls[2:]) and sample["population"] == 4  # the unlabelled ones
    assert sample["strata"] == {"fail": {"population": 2, "drawn": sample["strata"]["fail"]["drawn"]},
                                "pass": {"population": 2, "drawn": sample["strata"]["pass"]["drawn"]}}
    assert sample["strata"]["fail"]["drawn"] + sample["strata"]["pass"]["drawn"] == 3
    assert all("verdict" not in e for e in sample["calls"])  # blind until labelled
    again = api.post(f"/api/v1/metrics/{metric}/audit_sample/", json={"size": 3, "seed": 11}).json()
    assert [e["call_log_id"] for e in again["calls"]] == drawn  # the seed is the draw
    assert _vote(api, drawn[0], metric, vote="agree", source="random_audit", audit_sample_id=sample["id"]).status_code == 201
    after = api.get(f"/api/v1/audit_samples/{sample['id']}/").json()
    assert after["labelled"] == 1 and after["remaining"] == 2
    assert "verdict" in next(e for e in after["calls"] if e["call_log_id"] == drawn[0])
    listed = api.get(f"/test_framework/v1/metrics/{metric}/feedback/").json()
    sources = sorted(f["source"] for f in listed["results"])
    assert sources == ["manual", "random_audit", "review_queue"]
    assert listed["progress"]["sources"] == {"manual": 1, "review_queue": 1, "random_audit": 1}


def test_agreeing_with_na_is_a_label_and_ready_counts_usable_labels(api: Api, db) -> None:
    agent = api.agent()
    metric = api.metric("tone", eval_type="numeric", description="Rate 1-5")["id"]
    calls = [api.call(agent, f"c{i}")["id"] for i in range(7)]
    add_result(db, calls[0], metric, None)
    assert _vote(api, calls[0], metric, vote="agree").status_code == 201
    feedback = api.get(f"/test_framework/v1/metrics/{metric}/feedback/").json()
    assert feedback["results"][0]["label_known"] is True and feedback["results"][0]["label"] is None
    for c in calls[1:6]:  # a disagree on a number without an expected value says only "not this"
        add_result(db, c, metric, 3)
        assert _vote(api, c, metric, vote="disagree", feedback="not a 3").status_code == 201
    progress = api.get(f"/test_framework/v1/metrics/{metric}/feedback/").json()["progress"]
    assert progress["total"] == 6 and progress["usable_labels"] == 1 and progress["ready_for_labs"] is False
    refused = api.post("/test_framework/metric-reviews/process_feedbacks/", json={"metric_id": metric})
    assert refused.status_code == 400  # and labs agrees with the progress


def test_run_reviews_goes_through_the_cost_guard(api: Api, db) -> None:
    agent = api.agent()
    metric = api.metric()["id"]
    for i in range(101):
        c = api.call(agent, f"c{i}")["id"]
        add_result(db, c, metric, True)
        _vote(api, c, metric, vote="agree")
    r = api.post(f"/test_framework/v1/metrics/{metric}/run_reviews/")
    assert r.status_code == 409 and r.json()["estimate"]["calls"] == 101
    ok = api.post(f"/test_framework/v1/metrics/{metric}/run_reviews/", json={"confirm": True})
    assert ok.status_code == 202 and ok.json()["progress_id"]


def test_the_misalignment_overview_follows_the_current_version(api: Api, db) -> None:
    agent = api.agent()
    metric = api.metric()["id"]
    for i in range(8):
        c = api.call(agent, f"c{i}")["id"]
        add_result(db, c, metric, False)
        _vote(api, c, metric, vote="disagree", expected_value=True, feedback="at 00:03 the caller was verified by pin")
    before = next(r for r in api.get("/api/v1/metrics/misalignment/").json()["results"] if r["metric_id"] == metric)
    assert before["diagnosis"]["kind"] == "systemic" and before["disagreement"]["count"] == 8
    api.patch(f"/test_framework/v1/metrics/{metric}/", json={"description": "Verified by any means, a pin included?"})
    after = next(r for r in api.get("/api/v1/metrics/misalignment/").json()["results"] if r["metric_id"] == metric)
    assert after["version"] == 2 and after["feedback"] == 0 and after["diagnosis"]["kind"] == "not_enough_feedback"
    assert after["by_version"][0]["version"] == 1 and after["by_version"][0]["votes"] == 8  # history kept apart


def test_a_metric_declares_its_label_tolerance(api: Api, db) -> None:
    from judgelab.db.models import Metric
    from judgelab.labs.dataset import load_items

    agent = api.agent()
    metric = api.metric("score", eval_type="numeric", description="Rate 1-10", label_tolerance=1)
    assert metric["label_tolerance"] == 1
    c = api.call(agent)["id"]
    add_result(db, c, metric["id"], 7)
    _vote(api, c, metric["id"], vote="disagree", expected_value=8, feedback="an 8")
    with db.session() as session:
        items = load_items(session, api.project_id, session.get(Metric, metric["id"]), None)
    assert items[0]["tolerance"] == 1.0
    r = api.patch(f"/test_framework/v1/metrics/{metric['id']}/", json={"label_tolerance": 0.5})
    assert r.status_code == 200 and r.json()["label_tolerance"] == 0.5 and r.json()["new_version"] is False
