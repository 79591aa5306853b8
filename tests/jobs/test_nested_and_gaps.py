"""Nested judge calls are paid in the open; no evaluation ends as a silent gap."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import delete

from judgelab.db.models import CallLog
from judgelab.testing.fake_openai import FakeOpenAIServer
from tests.conftest import Api
from tests.jobs.conftest import RuntimeFactory
from tests.jobs.test_jobs import wait_for

ASKS_THREE = ("answers = [judge(f'question {i}') for i in range(3)]\n"
              "_result = all(a['result'] for a in answers)\n_explanation = 'asked three times'\n")


def test_nested_judge_requests_are_counted_capped_and_priced(api: Api, start_runtime: RuntimeFactory,
                                                              fake_model: FakeOpenAIServer, settings: Any) -> None:
    fake_model.rule = lambda body: json.dumps({"result": True, "explanation": "yes"})
    start_runtime(settings)
    agent = api.agent()
    calls = [api.call(agent, f"c{i}", "Yes please")["id"] for i in range(2)]
    metric = api.metric("asks", type="custom_code", custom_code=ASKS_THREE, description="", model="openai/gpt-4.1-mini")
    estimate = api.post("/api/v1/evaluations/estimate/", json={"metrics": [metric["id"]], "call_logs": calls}).json()
    assert estimate["llm_requests"] == 2 * 5  # priced at the declared maximum
    job = wait_for(api, api.post("/observability/v1/call-logs/evaluate_metrics/",
                                 json={"call_logs": calls, "metrics": [metric["id"]]}).json()["job_id"])
    assert job["status"] == "completed" and job["progress"]["errors"] == 0
    assert job["llm_calls"] == 6 == fake_model.stats.requests  # every nested request is in the job's count
    assert job["cost_usd"] > 0 and job["input_tokens"] > 0


def test_the_cap_on_nested_requests_is_an_explicit_error(api: Api, start_runtime: RuntimeFactory,
                                                         fake_model: FakeOpenAIServer, settings: Any) -> None:
    fake_model.rule = lambda body: json.dumps({"result": True, "explanation": "yes"})
    start_runtime(settings)
    from judgelab.evaluation.sandbox import Limits, configure

    configure("bwrap", limits=Limits(nested_calls=2), concurrency=4)
    try:
        agent = api.agent()
        call = api.call(agent, "c", "Yes please")["id"]
        metric = api.metric("asks", type="custom_code", custom_code=ASKS_THREE, description="")
        job = wait_for(api, api.post("/observability/v1/call-logs/evaluate_metrics/",
                                     json={"call_logs": [call], "metrics": [metric["id"]]}).json()["job_id"])
        assert job["status"] == "completed" and job["progress"]["errors"] == 1 and job["llm_calls"] == 2
        result = api.get(f"/observability/v1/call-logs-external/{call}/").json()["evaluation"]["metrics"][0]
        assert "at most 2 nested judge" in result["error"] and result["value"] is None
    finally:
        configure()


def test_a_child_that_breaks_the_protocol_is_an_error_result(api: Api, start_runtime: RuntimeFactory,
                                                             settings: Any) -> None:
    start_runtime(settings)
    agent = api.agent()
    call = api.call(agent, "c", "hello")["id"]
    # The child writes a JSON list where a message belongs, straight to the protocol's stream.
    code = "import os\nos.write(3, b'[1, 2, 3]\\n')\nimport time\ntime.sleep(5)"
    metric = api.metric("liar", type="custom_code", custom_code=code, description="")
    job = wait_for(api, api.post("/observability/v1/call-logs/evaluate_metrics/",
                                 json={"call_logs": [call], "metrics": [metric["id"]]}).json()["job_id"])
    assert job["status"] == "completed" and job["progress"] == {**job["progress"], "done": 1, "errors": 1}
    result = api.get(f"/observability/v1/call-logs-external/{call}/").json()["evaluation"]["metrics"][0]
    assert "protocol was broken" in result["error"]


def test_a_vanished_call_is_an_error_not_a_gap(api: Api, db: Any, start_runtime: RuntimeFactory,
                                               fake_model: FakeOpenAIServer, settings: Any) -> None:
    agent = api.agent()
    calls = [api.call(agent, f"c{i}", "please cancel")["id"] for i in range(3)]
    metric = api.metric()
    queued = api.post("/observability/v1/call-logs/evaluate_metrics/", json={"call_logs": calls, "metrics": [metric["id"]]})
    with db.session() as session:  # the call disappears after the job was submitted, before it runs
        session.execute(delete(CallLog).where(CallLog.id == calls[1]))
    start_runtime(settings)
    job = wait_for(api, queued.json()["job_id"])
    assert job["progress"]["done"] == 3 and job["progress"]["errors"] == 1, job
    assert job["status"] == "completed"  # complete: every evaluation has an outcome, one an explicit error
    from judgelab.db.models import JobItem

    with db.session() as session:
        items = session.query(JobItem).filter(JobItem.job_id == job["id"], JobItem.outcome == "error").all()
    assert len(items) == 1 and items[0].call_log_id == calls[1] and "could not evaluate" in (items[0].error or "")
