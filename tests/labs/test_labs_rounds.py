"""A second round edits the winner on the errors it still makes; candidates that fix nothing are
dropped before they cost a full pass; the pool keeps what another candidate got right."""

from __future__ import annotations

import json
from typing import Any

from judgelab.labs.search import pareto_pool
from judgelab.testing.fake_openai import FakeOpenAIServer
from tests.conftest import Api
from tests.jobs.conftest import RuntimeFactory
from tests.jobs.test_jobs import wait_for
from tests.labs import rewriter
from tests.labs.test_labs_run import _poll, _vote

STRICT = "Pass only when the customer says the exact word yes before the agent books."
RULES = {"go ahead": " A paraphrased yes such as 'go ahead' counts.", "thumbs up": " A thumbs-up emoji counts as yes."}


def judge(body: dict[str, Any]) -> str:
    """The rewriter fixes only the first kind of mistake it is shown; the judge reads its criterion literally."""
    text = body["messages"][-1]["content"]
    if rewriter.is_rewriter(body):
        mistakes = rewriter.mistakes(body)
        first = min((k for k in RULES if k in mistakes), key=mistakes.index)
        return rewriter.answer(RULES[first].strip())
    criterion = rewriter.criterion_of(body)
    transcript = text.rsplit("</T", 1)[0].rsplit(">", 1)[-1]
    if "Customer: yes" in transcript:
        result = True
    elif "go ahead" in transcript:
        result = "paraphrased yes" in criterion
    elif "thumbs up" in transcript:
        result = "emoji" in criterion
    else:
        result = False
    return json.dumps({"result": result, "explanation": "read it"})


def test_a_second_round_fixes_what_the_first_left(api: Api, start_runtime: RuntimeFactory,
                                                  fake_model: FakeOpenAIServer, settings: Any) -> None:
    fake_model.rule = judge
    start_runtime(settings)
    agent = api.agent()
    groups: dict[str, list[int]] = {"yes": [], "go ahead": [], "thumbs up": [], "none": []}
    for i in range(6):
        groups["yes"].append(api.call(agent, f"y{i}", f"Book F{i}? Customer: yes")["id"])
        groups["go ahead"].append(api.call(agent, f"g{i}", f"Book F{i}? Sure, go ahead")["id"])
        groups["thumbs up"].append(api.call(agent, f"t{i}", f"Book F{i}? (sends a thumbs up)")["id"])
        groups["none"].append(api.call(agent, f"n{i}", f"I booked F{i} for you")["id"])
    metric = api.metric("confirms", eval_type="binary_workflow_adherence", description=STRICT)["id"]
    everything = [c for g in groups.values() for c in g]
    wait_for(api, api.post("/observability/v1/call-logs/evaluate_metrics/", json={"call_logs": everything, "metrics": [metric]}).json()["job_id"])
    for kind in ("go ahead", "thumbs up"):
        for c in groups[kind]:
            _vote(api, c, metric, vote="disagree", expected_value=True, feedback=f"At 00:04 '{kind}' is a yes.")
    for c in groups["yes"] + groups["none"]:
        _vote(api, c, metric, vote="agree", feedback="Right.")
    run = _poll(api, api.post("/test_framework/metric-reviews/process_feedbacks/",
                              json={"metric_id": metric, "max_judge_calls": 300}).json()["progress_id"])
    assert run["status"] == "completed", run
    assert run["chosen"] == "hypothesis 1 (round 2, from hypothesis 1)"
    assert RULES["go ahead"].strip() in run["improved_metric_description"]
    assert RULES["thumbs up"].strip() in run["improved_metric_description"]
    assert run["progress"]["rewriter_calls"] == 2
    held = run["scores"]["held_out"]["proposal"]
    assert held["num_correct"] == held["num_total"]
    # Candidates that fixed none of the errors were dropped after judging the errors alone.
    dropped = [t for t in run["selection"] if t.get("dropped")]
    assert dropped and all(t["fixed"] == 0 or t["broke"] >= t["fixed"] for t in dropped)
    assert isinstance(run["pool"], list)


def test_pareto_pool_keeps_candidates_right_where_the_chosen_is_wrong() -> None:
    items = [{"label": True}, {"label": False}, {"label": True}]
    verdicts = {"a": [True, False, False], "b": [False, False, True], "c": [True, True, False]}
    assert pareto_pool(items, verdicts, "a") == ["b"]
    assert pareto_pool(items, verdicts, "current") == ["a", "b", "c"]


def test_no_generators_scores_the_given_prompt_alone(api: Api, start_runtime: RuntimeFactory,
                                                     fake_model: FakeOpenAIServer, settings: Any) -> None:
    """How a baseline from elsewhere (bench/align.py's GEPA) is measured by the same held-out report."""
    fake_model.rule = judge
    start_runtime(settings)
    agent = api.agent()
    calls = {k: [api.call(agent, f"{k[0]}{i}", text.format(i=i))["id"] for i in range(5)] for k, text in
             {"yes": "Book F{i}? Customer: yes", "go ahead": "Book F{i}? Sure, go ahead", "none": "I booked F{i}"}.items()}
    metric = api.metric("confirms", eval_type="binary_workflow_adherence", description=STRICT)["id"]
    everything = [c for g in calls.values() for c in g]
    wait_for(api, api.post("/observability/v1/call-logs/evaluate_metrics/", json={"call_logs": everything, "metrics": [metric]}).json()["job_id"])
    for c in calls["go ahead"]:
        _vote(api, c, metric, vote="disagree", expected_value=True, feedback="'go ahead' is a yes.")
    for c in calls["yes"] + calls["none"]:
        _vote(api, c, metric, vote="agree", feedback="Right.")
    given = STRICT + RULES["go ahead"]
    run = _poll(api, api.post("/test_framework/metric-reviews/process_feedbacks/", json={
        "metric_id": metric, "simplified_prompt": given, "generators": []}).json()["progress_id"])
    assert run["status"] == "completed", run
    assert run["candidates"] == ["simplified prompt"] and run["chosen"] == "simplified prompt"
    assert run["improved_metric_description"] == given and run["progress"]["rewriter_calls"] == 0
    held = run["scores"]["held_out"]["proposal"]
    assert held["num_correct"] == held["num_total"] == 5
