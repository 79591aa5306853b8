"""One rule for several reviewers everywhere: each reviewer's latest vote, the majority across
reviewers, a tie asks; the overruled reason never survives; kappa between reviewers is shown."""

from __future__ import annotations

from typing import Any

from judgelab.db.models import Metric
from judgelab.labs.dataset import apply_answer, contradictions, load_items
from judgelab.labs.versions import labels_by_call
from tests.conftest import Api, add_result


def _vote(api: Api, call: int, metric: int, **body: Any) -> None:
    r = api.post(f"/observability/v1/call-logs-external/{call}/mark_metric_vote/", json={"metric_id": metric, **body})
    assert r.status_code == 201, r.text


def test_majority_label_and_reasons_everywhere(api: Api, db: Any) -> None:
    agent = api.agent()
    metric = api.metric()["id"]
    three, tie = api.call(agent, "three", "I lost my card")["id"], api.call(agent, "tie", "Change my seat")["id"]
    for c in (three, tie):
        add_result(db, c, metric, False)
    _vote(api, three, metric, vote="disagree", expected_value=True, feedback="verified by pin", reviewer="ana")
    _vote(api, three, metric, vote="disagree", expected_value=True, feedback="pin counts", reviewer="bo")
    _vote(api, three, metric, vote="agree", feedback="no id asked", reviewer="cy")
    _vote(api, tie, metric, vote="disagree", expected_value=True, feedback="fine", reviewer="ana")
    _vote(api, tie, metric, vote="agree", feedback="not fine", reviewer="bo")
    with db.session() as session:
        m = session.get(Metric, metric)
        items = load_items(session, api.project_id, m, None)
        by_call = labels_by_call(session, m)
    on_three = [i for i in items if i["call"]["id"] == three]
    assert len(on_three) == 1 and on_three[0]["label"] is True and on_three[0]["reviewer"] == "3 reviewers"
    assert on_three[0]["reason"] == "verified by pin / pin counts"  # cy's overruled reason is gone
    assert by_call == {three: True}  # the tie is left unlabelled
    conflicts = contradictions(items)
    assert len(conflicts) == 1 and {i["reviewer"] for i in conflicts[0]} == {"ana", "bo"}  # the tie asks
    settled = apply_answer(items, conflicts[0], {"answer": True})
    on_tie = [i for i in settled if i["call"]["id"] == tie]
    assert [(i["label"], i["reason"]) for i in on_tie] == [(True, "fine")]  # bo's "not fine" is not kept as a True reason
    report = next(r for r in api.get("/api/v1/metrics/misalignment/").json()["results"] if r["metric_id"] == metric)
    assert report["contested_calls"] == 1 and report["feedback"] == 1  # one call decided, one tied
    assert report["reviewers"]["reviewers"] == ["ana", "bo"] and report["reviewers"]["n"] == 2
    assert report["reviewers"]["accuracy"]["value"] == 0.5


def test_the_ledger_keeps_built_from_labels_out_of_later_held_out_sets(api: Api, db: Any) -> None:
    from judgelab.labs.dataset import split
    from judgelab.labs.versions import agreement_by_version

    agent = api.agent()
    metric = api.metric()["id"]
    calls = [api.call(agent, f"c{i}", f"call number {i}")["id"] for i in range(15)]
    for c in calls:
        add_result(db, c, metric, c % 3 == 0)
        _vote(api, c, metric, vote="agree")
    with db.session() as session:
        m = session.get(Metric, metric)
        items = load_items(session, api.project_id, m, None)
        built_from = [i["key"] for i in items[:9]]
        m.current.trained_on = built_from  # as if version 1 had been applied from a labs run on these
    with db.session() as session:
        m = session.get(Metric, metric)
        items = load_items(session, api.project_id, m, None)
        assert sum(i["trained"] for i in items) == 9
        for seed in range(20):
            _opt, held = split(items, seed)
            assert held and not any(i["key"] in built_from for i in held)  # they still train, never test
        versions = agreement_by_version(session, m)
    assert versions[0]["in_sample_left_out"] == 9 and versions[0]["compared"] == 6


def test_the_metric_page_shows_reviewer_agreement(api: Api, db: Any, app_client: Any) -> None:
    agent = api.agent()
    metric = api.metric()["id"]
    for i in range(3):
        c = api.call(agent, f"c{i}", f"text {i}")["id"]
        add_result(db, c, metric, True)
        _vote(api, c, metric, vote="agree", reviewer="ana")
        _vote(api, c, metric, vote="agree" if i else "disagree", expected_value=None if i else False, reviewer="bo",
              feedback="no pin")
    app_client.post("/login", data={"api_key": api.key})
    page = app_client.get(f"/metrics/{metric}").text
    assert "Reviewers agree with each other: ana and bo" in page and "on 3 shared calls" in page
    assert "1 call(s) where reviewers tie" in page
