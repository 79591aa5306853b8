"""Agreement over time (by week of the calls, per version) and label balance, scored exactly."""

from __future__ import annotations

from judgelab.db import Database
from judgelab.labs.drift import agreement_over_time, label_balance
from judgelab.metrics.service import get_metric
from tests.conftest import Api, add_result
from tests.web.test_pages import _login


def test_weekly_agreement_and_label_balance(api: Api, db: Database) -> None:
    agent = api.agent()
    metric = api.metric("confirms")["id"]
    # Week of 2026-01-05: the judge agrees on all 4; week of 2026-01-12: it gets 2 of 4 wrong.
    plan = [("2026-01-05", True, True), ("2026-01-06", False, False), ("2026-01-07", True, True), ("2026-01-08", False, False),
            ("2026-01-12", True, False), ("2026-01-13", False, True), ("2026-01-14", True, True), ("2026-01-15", False, False)]
    for n, (day, label, said) in enumerate(plan):
        call = api.call(agent, f"c{n}", f"call {n}", timestamp=f"{day}T10:00:00Z")["id"]
        add_result(db, call, metric, said)
        vote = {"metric_id": metric, "vote": "agree" if label == said else "disagree", "feedback": "checked"}
        if label != said:
            vote["expected_value"] = label
        if n == 0:
            vote["source"] = "manual"
        assert api.post(f"/observability/v1/call-logs-external/{call}/mark_metric_vote/", json=vote).status_code in (200, 201)
    with db.session() as s:
        m = get_metric(s, api.project_id, metric)
        weeks = agreement_over_time(s, m)
        balance = label_balance(s, m)
    assert [(w["week"], w["version"], w["n"]) for w in weeks] == [("2026-01-05", 1, 4), ("2026-01-12", 1, 4)]
    assert weeks[0]["kappa"]["value"] == 1.0 and weeks[0]["accuracy"]["value"] == 1.0
    assert weeks[1]["kappa"]["value"] == 0.0 and weeks[1]["accuracy"]["value"] == 0.5
    assert balance == {"total": 8, "by_value": {"pass": 4, "fail": 4}, "by_source": {"manual": 8}}
    _login(api.client, api.key)
    page = api.client.get(f"/metrics/{metric}").text
    assert 'aria-label="weekly kappa per version"' in page and "<td>2026-01-12</td>" in page
    assert 'aria-label="label balance"' in page and "4 (50%)" in page
