"""The calls list in the browser: filtered by a metric's verdict and feedback, and ticked calls taken to
the evaluation form, estimated and started on exactly those calls."""

from __future__ import annotations

import re

from judgelab.db import Database
from tests.conftest import Api, add_result
from tests.web.test_pages import _login


def test_filter_by_verdict_then_evaluate_the_ticked_calls(api: Api, db: Database) -> None:
    csrf = _login(api.client, api.key)
    agent = api.agent()
    calls = [api.call(agent, f"c{i}", f"text {i}")["id"] for i in range(4)]
    metric = api.metric("confirms", model="openai/gpt-4.1-mini")["id"]
    for n, c in enumerate(calls):
        add_result(db, c, metric, n % 2 == 0)
    page = api.client.get("/calls", params={"metric": metric, "verdict": "fail"}).text
    listed = re.findall(r'name="call" value="(\d+)"', page)
    assert listed == [str(calls[3]), str(calls[1])]
    bad = api.client.get("/calls", params={"verdict": "fail"})
    assert bad.status_code == 400 and "metric" in bad.text  # a verdict needs its metric, said on the page
    picked = api.client.get("/evaluate", params={"call": listed}).text
    assert "2 selected call(s)" in picked and picked.count('type="hidden" name="call"') == 2
    est = api.client.post("/evaluate", data={"csrf_token": csrf, "metric": str(metric), "call": listed, "action": "estimate"}).text
    assert "<strong>2</strong> calls" in est
    started = api.client.post("/evaluate", data={"csrf_token": csrf, "metric": str(metric), "call": listed, "action": "start"},
                              follow_redirects=False)
    assert started.status_code == 303
    job = api.get(f"/api/v1/jobs/{started.headers['location'].rsplit('/', 1)[1]}/").json()
    assert job["calls"] == 2 and job["progress"]["total"] == 2
    assert api.client.get("/evaluate", params={"call": "nope"}).status_code == 400


def test_the_estimate_offers_the_batch_price_and_the_form_starts_a_batch_job(api: Api, db: Database) -> None:
    csrf = _login(api.client, api.key)
    agent = api.agent()
    calls = [str(api.call(agent, f"b{i}", f"text {i}")["id"]) for i in range(3)]
    metric = api.metric("confirms", model="openai/gpt-4.1-mini")["id"]
    est = api.client.post("/evaluate", data={"csrf_token": csrf, "metric": str(metric), "call": calls, "action": "estimate"}).text
    prices = [float(p) for p in re.findall(r"<strong>\$([0-9.]+)</strong>", est)]
    assert len(prices) == 2 and abs(prices[1] - prices[0] / 2) < 1e-4  # live, then half through the batch API
    assert 'name="batch"' in est
    started = api.client.post("/evaluate", data={"csrf_token": csrf, "metric": str(metric), "call": calls, "batch": "on",
                                                 "action": "start"}, follow_redirects=False)
    job = api.get(f"/api/v1/jobs/{started.headers['location'].rsplit('/', 1)[1]}/").json()
    assert job["batch"] is True and job["calls"] == 3
    unpriced = api.metric("unpriced", model="openai/judge-1")["id"]
    est = api.client.post("/evaluate", data={"csrf_token": csrf, "metric": str(unpriced), "call": calls,
                                             "action": "estimate"}).text
    assert 'name="batch"' not in est  # no price, no promise of half of it
