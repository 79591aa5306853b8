"""N/A errors get a trigger candidate: labs proposes when the metric applies, not only how to grade."""

from __future__ import annotations

import json
from typing import Any

from judgelab.labs.candidates import trigger_candidate
from judgelab.testing.fake_openai import FakeOpenAIServer
from tests.conftest import Api
from tests.jobs.conftest import RuntimeFactory
from tests.jobs.test_jobs import wait_for
from tests.labs import rewriter
from tests.labs.test_labs_run import _poll, _vote

CRITERION = "Pass only when the customer says yes before the agent books a flight."
HOTEL_REASON = "At 00:03 the call is about a hotel room, not a flight booking: the metric does not apply."


def judge(body: dict[str, Any]) -> str:
    """Grades yes / no and never answers N/A itself; as a trigger, reads the scope it is given."""
    if rewriter.is_rewriter(body):
        return rewriter.answer()  # nothing to change in the grading
    text = body["messages"][-1]["content"]
    question, transcript = rewriter.question_of(body), text.rsplit("</T", 1)[0].rsplit(">", 1)[-1]
    if "applies to this conversation at all" in question:
        out_of_scope = "does not apply when" in question and "hotel" in question.split("does not apply when", 1)[1]
        return json.dumps({"result": not (out_of_scope and "hotel" in transcript), "explanation": "scope checked"})
    return json.dumps({"result": "Customer: yes" in transcript, "explanation": "looked for a yes"})


def test_na_errors_propose_a_trigger_that_is_applied(api: Api, start_runtime: RuntimeFactory,
                                                      fake_model: FakeOpenAIServer, settings: Any) -> None:
    fake_model.rule = judge
    start_runtime(settings)
    agent = api.agent()
    calls: dict[str, list[int]] = {"yes": [], "no": [], "hotel": []}
    for i in range(6):
        calls["yes"].append(api.call(agent, f"y{i}", f"Book flight F{i}? Customer: yes")["id"])
        calls["no"].append(api.call(agent, f"n{i}", f"I booked flight F{i} for you")["id"])
        calls["hotel"].append(api.call(agent, f"h{i}", f"My hotel room {i} has no towels")["id"])
    metric = api.metric("confirms before booking", eval_type="binary_workflow_adherence", description=CRITERION)["id"]
    everything = [c for group in calls.values() for c in group]
    wait_for(api, api.post("/observability/v1/call-logs/evaluate_metrics/", json={"call_logs": everything, "metrics": [metric]}).json()["job_id"])
    for c in calls["hotel"]:
        _vote(api, c, metric, vote="disagree", expected_value="N/A", feedback=HOTEL_REASON)
    for c in calls["yes"] + calls["no"]:
        _vote(api, c, metric, vote="agree", feedback="Right.")

    started = api.post("/test_framework/metric-reviews/process_feedbacks/", json={"metric_id": metric})
    run = _poll(api, started.json()["progress_id"])
    assert run["status"] == "completed", run
    assert run["chosen"] == "refined trigger" and "refined trigger" in run["candidates"]
    assert run["improved_evaluation_trigger"] == "custom" and run["improved_trigger_type"] == "llm_judge"
    assert "hotel room" in run["improved_evaluation_trigger_prompt"]
    assert run["improved_metric_description"] == CRITERION
    assert "+[evaluation_trigger] custom (llm_judge)" in run["diff"]
    held = run["scores"]["held_out"]
    assert held["proposal"]["num_correct"] == held["proposal"]["num_total"]
    assert held["baseline"]["num_correct"] < held["baseline"]["num_total"]

    applied = api.post(f"/api/v1/labs/{run['progress_id']}/apply/")
    assert applied.status_code == 200, applied.text
    body = applied.json()
    assert body["evaluation_trigger"] == "custom" and body["trigger_type"] == "llm_judge" and body["version"] == 2
    rerun = wait_for(api, api.post("/observability/v1/call-logs/rerun_evaluation/",
                                   json={"call_logs": [calls["hotel"][0], calls["yes"][0]], "metrics": [metric]}).json()["job_id"])
    assert rerun["status"] == "completed"
    hotel = api.get(f"/observability/v1/call-logs-external/{calls['hotel'][0]}/").json()["evaluation"]["metrics"][0]
    assert hotel["value"] is None and hotel["extra"]["trigger_failed"] is True
    yes = api.get(f"/observability/v1/call-logs-external/{calls['yes'][0]}/").json()["evaluation"]["metrics"][0]
    assert yes["value"] is True


def _item(label: Any, reason: str = "") -> dict[str, Any]:
    return {"label": label, "reason": reason, "call": {}}


def test_trigger_candidate_shapes() -> None:
    content = {"description": "Did the agent confirm?", "evaluation_trigger": "automatic"}
    narrow = [{"kind": "should have been N/A", "members": [(_item(None, "about a hotel"), False)]}]
    widen = [{"kind": "unexpected N/A", "members": [(_item(True, "a rebooking is a booking too"), None)]}]
    assert trigger_candidate(content, [{"kind": "false fail", "members": []}], []) is None
    out = trigger_candidate(content, narrow, [_item(None), _item(True)])
    assert out is not None and out["evaluation_trigger"] == "custom" and "- About a hotel" in out["evaluation_trigger_prompt"]
    # Nothing labelled is out of scope: the trigger only hides calls that should be graded.
    assert trigger_candidate(content, widen, [_item(True), _item(False)]) == {
        "evaluation_trigger": "always", "trigger_type": None, "evaluation_trigger_prompt": None}
    custom = {**content, "evaluation_trigger": "custom", "trigger_type": "llm_judge", "evaluation_trigger_prompt": "Calls about flights."}
    both = trigger_candidate(custom, narrow + widen, [_item(None), _item(True)])
    assert both is not None and both["evaluation_trigger_prompt"].startswith("Calls about flights.")
    assert "does apply when" in both["evaluation_trigger_prompt"] and "does not apply when" in both["evaluation_trigger_prompt"]
