"""Applying or discarding a labs proposal is a person's explicit act, once, on the version it was made for."""

from __future__ import annotations

from typing import Any

from judgelab.testing.fake_openai import FakeOpenAIServer
from tests.conftest import Api
from tests.jobs.conftest import RuntimeFactory
from tests.jobs.test_jobs import wait_for
from tests.labs import rewriter
from tests.labs.test_labs_run import PARAPHRASE_RULE, _poll, _setup, _vote, model


def _completed_run(api: Api, metric: int) -> dict[str, Any]:
    started = api.post("/test_framework/metric-reviews/process_feedbacks/", json={"metric_id": metric})
    assert started.status_code == 202, started.text
    run = _poll(api, started.json()["progress_id"])
    assert run["status"] == "completed", run
    return run


def test_apply_and_discard(api: Api, start_runtime: RuntimeFactory, fake_model: FakeOpenAIServer, settings: Any) -> None:
    fake_model.rule = model
    settings.rewriter_model = "openai/rewriter-9"
    start_runtime(settings)
    metric, calls = _setup(api)
    everything = [c for group in calls.values() for c in group]
    wait_for(api, api.post("/observability/v1/call-logs/evaluate_metrics/", json={"call_logs": everything, "metrics": [metric]}).json()["job_id"])
    for c in calls["paraphrase"]:
        _vote(api, c, metric, vote="disagree", expected_value=True, feedback="At 00:04 'go ahead' is a paraphrased yes.")
    for c in calls["yes"] + calls["none"]:
        _vote(api, c, metric, vote="agree", feedback="Right.")

    first = _completed_run(api, metric)
    rewrites = [b for b in fake_model.stats.bodies if rewriter.is_rewriter(b)]
    assert rewrites and {b["model"] for b in rewrites} == {"rewriter-9"}  # JUDGELAB_REWRITER_MODEL
    assert {b["model"] for b in fake_model.stats.bodies if b not in rewrites} == {"judge-1"}
    discarded = api.post(f"/api/v1/labs/{first['progress_id']}/discard/")
    assert discarded.status_code == 200 and discarded.json()["discarded"] is True
    assert api.post(f"/api/v1/labs/{first['progress_id']}/apply/").status_code == 409
    assert api.get(f"/test_framework/v1/metrics/{metric}/").json()["version"] == 1

    second = _completed_run(api, metric)
    applied = api.post(f"/api/v1/labs/{second['progress_id']}/apply/")
    assert applied.status_code == 200, applied.text
    assert applied.json()["version"] == 2 and PARAPHRASE_RULE.strip() in applied.json()["description"]
    after = api.get("/test_framework/metric-reviews/process_feedbacks_progress/",
                    params={"progress_id": second["progress_id"]}).json()
    assert after["applied"] is True and after["applied_version"] == 2
    again = api.post(f"/api/v1/labs/{second['progress_id']}/apply/")
    assert again.status_code == 409 and "already applied" in again.json()["detail"]
    # A run made for version 1 cannot be applied over version 2.
    third_id = api.post("/test_framework/metric-reviews/process_feedbacks/", json={"metric_id": metric}).json()["progress_id"]
    api.patch(f"/test_framework/v1/metrics/{metric}/", json={"description": "Something else entirely."})
    third = _poll(api, third_id)
    if third["status"] == "completed":
        stale = api.post(f"/api/v1/labs/{third_id}/apply/")
        assert stale.status_code == 409 and "changed since" in stale.json()["detail"]
    assert api.post("/api/v1/labs/nope/apply/").status_code == 404
