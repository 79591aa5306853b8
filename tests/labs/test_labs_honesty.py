"""Tests that would catch a dishonest verdict: a degenerate judge on error-driven labels, and canary
tokens in random-audit labels that must never reach a generator, on the split and the CV path."""

from __future__ import annotations

import json
from typing import Any

from judgelab.testing.fake_openai import FakeOpenAIServer
from tests.conftest import Api, add_result
from tests.jobs.conftest import RuntimeFactory
from tests.labs import rewriter
from tests.labs.test_labs_run import _poll, _vote

ORIGINAL = "Fail the call when the agent books without asking the customer first."
CANARY = "zebracanary"


def degenerate(body: dict[str, Any]) -> str:
    """Judges the original prompt by the transcript; fails every call once the prompt changes at all.
    Its rewriter adds a rule."""
    if rewriter.is_rewriter(body):
        return rewriter.answer("Be strict about every booking.")
    text = body["messages"][-1]["content"]
    criterion = rewriter.criterion_of(body)
    if criterion.strip() != ORIGINAL:
        return json.dumps({"result": False, "explanation": "fails"})
    return json.dumps({"result": "asked first" in text or "booked quietly" in text, "explanation": "read it"})


def _labelled(api: Api, db: Any, wrong: int, right: int, audit_ok: int, canary: bool = False) -> int:
    """`wrong` calls the original prompt passes that people fail (the errors a review queue surfaces),
    `right` it gets right, and `audit_ok` random-audit calls it passes rightly."""
    agent = api.agent()
    metric = api.metric("asks first", description=ORIGINAL)["id"]
    for i in range(wrong):
        c = api.call(agent, f"w{i}", f"I booked quietly ref-w{i}")["id"]
        add_result(db, c, metric, True, "looks fine")
        _vote(api, c, metric, vote="disagree", expected_value=False, feedback="the agent booked without asking first",
              source="review_queue")
    for i in range(right):
        c = api.call(agent, f"r{i}", f"Shall I book? asked first ref-r{i}")["id"]
        add_result(db, c, metric, True, "asked")
        _vote(api, c, metric, vote="agree", feedback="asked first, fine")
    audit_calls = []
    for i in range(audit_ok):
        token = f" {CANARY}{i}" if canary else ""
        c = api.call(agent, f"a{i}", f"Shall I book? asked first ref-a{i}{token}")["id"]
        add_result(db, c, metric, True, "asked")
        audit_calls.append(c)
    if audit_ok:
        sample = api.post(f"/api/v1/metrics/{metric}/audit_sample/", json={"size": audit_ok, "seed": 3}).json()
        assert sorted(e["call_log_id"] for e in sample["calls"]) == sorted(audit_calls)
        for c in audit_calls:
            _vote(api, c, metric, vote="agree", feedback=f"asked before booking{' ' + CANARY if canary else ''}",
                  source="random_audit", audit_sample_id=sample["id"])
    return metric


def _run(api: Api, metric: int) -> dict[str, Any]:
    started = api.post("/test_framework/metric-reviews/process_feedbacks/", json={"metric_id": metric, "max_judge_calls": 400})
    assert started.status_code == 202, started.text
    return _poll(api, started.json()["progress_id"], timeout=120)


def test_a_degenerate_judge_on_error_driven_labels_is_never_improved(
    api: Api, db: Any, start_runtime: RuntimeFactory, fake_model: FakeOpenAIServer, settings: Any
) -> None:
    fake_model.rule = degenerate
    start_runtime(settings)
    metric = _labelled(api, db, wrong=15, right=3, audit_ok=0)
    run = _run(api, metric)
    assert run["status"] == "completed", run
    # Held out: 5 of the 15 false passes and 1 of the 3 right ones. The broken prompt "fixes" the 5 and
    # breaks the 1: exact p = 7/64, not significant, and without labels nobody picked never improved.
    v = run["verdict"]
    assert (v["verdict"], v["learning_verdict"], v["fixed"], v["broken"], v["p"]) == ("not significant",
                                                                                      "not significant", 5, 1, 7 / 64)
    assert v["next_step"]["action"] == "audit_sample"


def test_a_degenerate_judge_on_labels_of_one_class_is_refused(
    api: Api, db: Any, start_runtime: RuntimeFactory, fake_model: FakeOpenAIServer, settings: Any
) -> None:
    fake_model.rule = degenerate
    start_runtime(settings)
    metric = _labelled(api, db, wrong=18, right=0, audit_ok=0)
    run = _run(api, metric)
    v = run["verdict"]
    # 6 of 6 held-out false passes "fixed" (p = 1/64), but every label and every new verdict is FAIL.
    assert (v["verdict"], v["fixed"], v["broken"], v["p"]) == ("not significant", 6, 0, 1 / 64)
    assert "one class" in v["explanation"]


def test_with_random_audit_labels_the_degenerate_judge_is_caught(
    api: Api, db: Any, start_runtime: RuntimeFactory, fake_model: FakeOpenAIServer, settings: Any
) -> None:
    fake_model.rule = degenerate
    start_runtime(settings)
    metric = _labelled(api, db, wrong=15, right=3, audit_ok=8)
    run = _run(api, metric)
    assert run["status"] == "completed", run
    # The 8 audit calls, all rightly passed by the original, are all failed by the proposal.
    assert (run["verdict"]["verdict"], run["verdict"]["fixed"], run["verdict"]["broken"]) == ("regressed", 0, 8)
    assert run["verdict"]["p_worse"] == 1 / 256 and run["verdict"]["evidence"].startswith("random audit")
    assert run["scores"]["audit"]["proposal"]["num_correct"] == 0 and run["scores"]["audit"]["baseline"]["num_correct"] == 8


def _no_canary(run: dict[str, Any], fake_model: FakeOpenAIServer) -> None:
    asked = [b["messages"][1]["content"] for b in fake_model.stats.bodies if rewriter.is_rewriter(b)]
    assert asked, "the rewriter was asked"
    assert not any(CANARY in r for r in asked)
    # Nor in any candidate, the proposal, or a few-shot block (which quotes labelled transcripts).
    judge_prompts = [rewriter.question_of(b) for b in fake_model.stats.bodies
                     if not rewriter.is_rewriter(b)]
    assert not any(CANARY in p for p in judge_prompts)
    assert CANARY not in json.dumps({k: v for k, v in run.items() if k not in ("audit_items",)})
    assert len(run["audit_items"]) == 6 and not set(run["audit_items"]) & set(run["held_out_items"])


def test_audit_canaries_never_reach_a_generator_on_the_split_path(
    api: Api, db: Any, start_runtime: RuntimeFactory, fake_model: FakeOpenAIServer, settings: Any
) -> None:
    fake_model.rule = degenerate
    start_runtime(settings)
    metric = _labelled(api, db, wrong=10, right=4, audit_ok=6, canary=True)
    run = _run(api, metric)
    assert run["status"] == "completed" and "validation" not in run, run
    _no_canary(run, fake_model)


def test_audit_canaries_never_reach_a_generator_on_the_cross_validated_path(
    api: Api, db: Any, start_runtime: RuntimeFactory, fake_model: FakeOpenAIServer, settings: Any
) -> None:
    fake_model.rule = degenerate
    start_runtime(settings)
    metric = _labelled(api, db, wrong=6, right=2, audit_ok=6, canary=True)
    run = _run(api, metric)
    assert run["status"] == "completed" and run["validation"].startswith("repeated 3-fold"), run
    _no_canary(run, fake_model)
