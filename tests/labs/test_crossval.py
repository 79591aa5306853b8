"""Few labels: repeated cross-validation instead of one powerless split, and the run says so."""

from __future__ import annotations

from typing import Any

import pytest

from judgelab.labs.crossval import FOLDS, folds, nadeau_bengio
from judgelab.testing.fake_openai import FakeOpenAIServer
from tests.conftest import Api
from tests.jobs.conftest import RuntimeFactory
from tests.jobs.test_jobs import wait_for
from tests.labs.test_labs_run import PARAPHRASE_RULE, _poll, _vote, model


def reads_everything(body: dict[str, Any]) -> str:
    """The labs tests' judge, but reading the whole criterion (rules and examples appended to it too)."""
    for message in body["messages"]:
        if "\n\nCriterion:\n" in message["content"]:
            head, rest = message["content"].split("\n\nCriterion:\n", 1)
            criterion, tail = rest.split("\n\nAnswer format:\n", 1) if "Answer format:" in rest else (rest, "")
            message = {**message, "content": head + "\n\nCriterion:\n" + " ".join(criterion.split())
                       + "\n\nAnswer format:\n" + tail}
            body = {**body, "messages": [*body["messages"][:-1], message]}
    return model(body)


def _items(labels: list[Any]) -> list[dict[str, Any]]:
    return [{"key": f"k{n}", "label": label, "fingerprint": f"fp{n // 2 if n < 4 else n}"} for n, label in enumerate(labels)]


def test_folds_are_stratified_deterministic_and_keep_conversations_together() -> None:
    items = _items([True, True, False, False, True, False, True, False, None])
    parts = folds(items, FOLDS, seed=3)
    assert parts == folds(items, FOLDS, seed=3) and parts != folds(items, FOLDS, seed=4)
    keys = [i["key"] for part in parts for i in part]
    assert sorted(keys) == sorted(i["key"] for i in items)  # each item in exactly one fold
    for part in parts:  # the two items of a conversation never straddle folds
        fps = {i["fingerprint"] for i in part}
        assert all(i["fingerprint"] not in fps for other in parts if other is not part for i in other)
    assert max(len(p) for p in parts) - min(len(p) for p in parts) <= 2


def test_a_small_labelled_set_is_cross_validated(api: Api, start_runtime: RuntimeFactory,
                                                 fake_model: FakeOpenAIServer, settings: Any) -> None:
    fake_model.rule = reads_everything
    start_runtime(settings)
    agent = api.agent()
    calls: dict[str, list[int]] = {"yes": [], "paraphrase": [], "none": []}
    for i in range(3):
        calls["yes"].append(api.call(agent, f"y{i}", f"Book flight ref-y{i}? Customer: yes")["id"])
        calls["paraphrase"].append(api.call(agent, f"p{i}", f"Book flight ref-p{i}? Sure, go ahead")["id"])
        calls["none"].append(api.call(agent, f"n{i}", f"I booked flight ref-n{i} for you")["id"])
    metric = api.metric("confirms", eval_type="binary_workflow_adherence",
                        description="Pass only when the customer says the exact word yes before the agent books.")["id"]
    everything = [c for group in calls.values() for c in group]
    wait_for(api, api.post("/observability/v1/call-logs/evaluate_metrics/", json={"call_logs": everything, "metrics": [metric]}).json()["job_id"])
    for c in calls["paraphrase"]:
        _vote(api, c, metric, vote="disagree", expected_value=True, feedback="At 00:04 'go ahead' is a paraphrased yes.")
    for c in calls["yes"] + calls["none"]:
        _vote(api, c, metric, vote="agree", feedback="Right.")
    run = _poll(api, api.post("/test_framework/metric-reviews/process_feedbacks/", json={"metric_id": metric}).json()["progress_id"])
    assert run["status"] == "completed", run
    assert run["validation"].startswith("repeated 3-fold cross-validation") and "over all 9 labels" in run["validation"]
    assert any("no single held-out split" in note for note in run["notes"])
    held = run["scores"]["held_out"]
    assert held["baseline"]["num_total"] == held["proposal"]["num_total"] == run["verdict"]["n"] == 9
    # Every paraphrase was fixed by a prompt made without its own label (the rules carry the reviewers' reason).
    assert held["baseline"]["num_correct"] == 6 and held["proposal"]["num_correct"] == 9
    # 3 of 9 fixed, none broken: exact one-sided p = 1/8, not significant at n = 9, said plainly, with what
    # to label next; and never more than a procedure estimate without random-audit labels.
    v = run["verdict"]
    assert (v["gain"], v["fixed"], v["broken"], v["p"]) == (1 / 3, 3, 0, 0.125)
    assert v["verdict"] == "not significant" and "cross-validation" in v["evidence"]
    assert v["next_step"]["action"] == "audit_sample" and v["next_step"]["size"] >= 12
    # Two repeats (the rewriter's default budget covers 3 folds + the final step twice); folds are
    # stratified by label, not by error, so a fold may hold 0, 1 or 2 paraphrases: the corrected
    # interval is computed from the six fold gains as they came.
    interval = v["procedure_interval"]
    assert interval["method"].startswith("Nadeau-Bengio") and interval["folds_scored"] == 6
    assert (interval["low"], interval["high"]) == pytest.approx(nadeau_bengio(interval["fold_gains"], 1 / 3))
    assert interval["low"] < 1 / 3 < interval["high"]
    assert run["fold_choices"] == {"hypothesis 1": 6} and run["progress"]["rewriter_calls"] == 7  # 3 folds x 2 repeats + the final step
    assert "repeat(s)" in run["validation"] and not run["validation"].startswith("repeated 3-fold cross-validation, 0")
    assert run["progress"]["judge_calls"] <= run["progress"]["judge_budget"] == 100
    assert run["progress"]["rewriter_calls"] <= run["progress"]["rewriter_budget"] == 8
    # The folds get the rewriter, as the final step does (budget 8: 3 folds + 1, twice), so two repeats.
    assert "2 repeat(s)" in run["validation"]
    assert len(run["held_out_items"]) == 9 == run["split"]["held_out"]  # every label was held out once per repeat
    assert run["judge_calls"] == run["progress"]["judge_calls"] and run["cost_usd"] == run["progress"]["cost_usd"]
    assert run["improved_metric_description"].endswith("\n- " + PARAPHRASE_RULE.strip())
