"""The optimiser's parts: the reflective dataset, one consolidated rules section, refused answers,
the reflection / selection split, merge, and the judge path labs shares with production."""

from __future__ import annotations

import json
import time
from typing import Any

from judgelab.evaluation import engine
from judgelab.evaluation.fit import fit
from judgelab.labs import rules as rulebook
from judgelab.labs.candidates import apply_hypothesis, clusters, parse_hypotheses, reflective_dataset, rules_candidate
from judgelab.labs.excerpt import turns_of
from judgelab.labs.search import halves, merge_candidate
from judgelab.testing.fake_openai import FakeOpenAIServer
from tests.conftest import Api, add_result
from tests.jobs.conftest import RuntimeFactory
from tests.jobs.test_jobs import wait_for
from tests.labs import rewriter
from tests.labs.test_labs_run import STRICT, _poll, _setup, _vote, model

SAME_REASON = "At 00:12 the customer said 'Sure, go ahead', which is a yes."


def _long_call(decisive: str) -> dict[str, Any]:
    turns = [{"role": "agent" if n % 2 else "user", "content": f"Small talk about the weather, line {n}.",
              "start_time": float(3 * n)} for n in range(30)]
    turns[17] = {"role": "agent", "content": "Shall I change the reservation to the later flight?", "start_time": 51.0}
    turns[18] = {"role": "user", "content": decisive, "start_time": 54.0}
    return {"transcript_json": turns}


def test_the_reflective_dataset_holds_the_explanation_and_the_decisive_moment() -> None:
    item = {"key": "a", "label": True, "reason": "The customer said 'Yes, please proceed' at 00:54.",
            "call": _long_call("Yes, please proceed.")}
    right_item = {"key": "b", "label": False, "reason": "", "call": _long_call("No, leave it as it is.")}
    data = reflective_dataset("Pass when the agent gets a confirmation before changing a reservation.",
                              [(item, False)], [(right_item, False)], {"a": "No explicit confirmation.", "b": "Refused."})
    [error] = data["errors"]
    assert error["judge_explanation"] == "No explicit confirmation." and error["expected"] == "PASS"
    assert "(turn 19) [00:54] User: Yes, please proceed." in error["moments"]
    assert "(turn 18)" in error["moments"] and "line 3." not in error["moments"]  # the decisive part, not the head
    assert len(error["moments"]) <= 1200
    [counter] = data["right"]
    assert counter["key"] == "b" and counter["judge_explanation"] == "Refused."
    # The 600-character head-and-tail excerpt of old missed it; a plain-text call is read line by line.
    text = {"transcript": "Agent: Shall I book it?\nCustomer: yes\nAgent: Done."}
    assert [t["content"] for t in turns_of(text)] == ["Shall I book it?", "yes", "Done."]


def test_rules_from_reasons_are_deduplicated_and_free_of_call_details() -> None:
    items = [{"key": str(n), "label": True, "reason": SAME_REASON, "call": {}} for n in range(6)]
    items.append({"key": "x", "label": True, "reason": "Booking HAT123 for $450.00 on 2024-05-01 was confirmed by the "
                  "customer at turn 14.", "call": {}})
    rules = rulebook.from_reasons(clusters([(i, False) for i in items]))
    assert rules == ["Do not fail a call for this: the customer said 'Sure, go ahead', which is a yes.",
                     "Do not fail a call for this: booking a reference for an amount on a date was confirmed by the customer."]
    assert not any(rulebook.specific(r) for r in rules)


def test_repeated_runs_edit_one_rules_section() -> None:
    legacy = (STRICT + "\n\nReviewers' rules (they override the text above where they conflict):\n- Old rule one."
              "\n\nReviewers' rules (they override the text above where they conflict):\n- Old rule one.\n- Old rule two.")
    once = rulebook.with_rules(legacy, ["A thumbs-up emoji counts as yes."])
    twice = rulebook.with_rules(once, ["A thumbs-up emoji counts as yes.", "A paraphrased yes counts."])
    assert twice.count("Rules learned from reviewers' feedback") == 1 and "Reviewers' rules" not in twice
    assert twice == (STRICT + "\n\n" + rulebook.RULES_HEADER + "\n- Old rule one.\n- Old rule two.\n"
                     "- A thumbs-up emoji counts as yes.\n- A paraphrased yes counts.")
    groups = clusters([({"key": "k", "label": True, "reason": "A paraphrased yes counts.", "call": {}}, False)])
    assert rules_candidate(twice, groups) is None  # nothing new: no candidate that only repeats a rule


def test_past_the_length_bound_rules_are_consolidated_with_a_note() -> None:
    notes: list[str] = []
    many = [" ".join(f"t{n}x{k}" for k in range(40)) + "." for n in range(20)]  # 20 distinct rules, ~300 characters each
    out = rulebook.with_rules(STRICT, many, notes)
    assert len(out) <= rulebook.bound(STRICT) and out.count("\n- ") <= rulebook.MAX_RULES
    assert notes and notes[0].startswith("the rules section was consolidated: 20 rules became")


def test_placeholder_truncated_and_gutted_answers_are_refused_with_a_note() -> None:
    assert parse_hypotheses(json.dumps({"hypotheses": [{"rule": "<a general rule>", "replaces": "", "rationale": "x"}]})) == (
        [], "the rewriter's hypotheses refused: a placeholder ('<a general rule>')")
    got, note = parse_hypotheses('{"hypotheses": [{"rule": "A paraphrased yes co')
    assert got == [] and note is not None and "truncated" in note
    got, note = parse_hypotheses('{"hypotheses": []}', "length")
    assert got == [] and note is not None and "cut off" in note
    assert rulebook.check(STRICT, "<the full edited criterion>") == "it echoes the answer format's placeholder instead of a criterion"
    assert rulebook.check(STRICT, "Pass always.").startswith("it drops most of the original criterion")
    assert rulebook.check(STRICT, STRICT + " x" * 3000).startswith("it grows the criterion to")
    notes: list[str] = []
    edited = apply_hypothesis(STRICT, {"rule": "At 00:04 a paraphrased yes counts.", "replaces": ""}, notes)
    assert edited.endswith("\n- A paraphrased yes counts.")


def test_reflection_and_selection_are_disjoint_and_both_hold_errors() -> None:
    items = [{"key": str(n), "label": n % 3 != 0, "fingerprint": f"f{n}"} for n in range(16)]
    base = [False] * 16  # wrong on every true label
    refl, sel = halves(items, base, seed=0)
    assert set(refl).isdisjoint(sel) and sorted(refl + sel) == list(range(16))
    assert refl == halves(items, base, seed=0)[0] and refl != halves(items, base, seed=1)[0]
    for part in (refl, sel):
        assert any(items[k]["label"] is True for k in part) and any(items[k]["label"] is False for k in part)
    small = items[:6]
    assert halves(small, base[:6], seed=0) == (list(range(6)), list(range(6)))


def test_merge_adds_the_pool_members_rules() -> None:
    a = {"description": rulebook.with_rules(STRICT, ["A paraphrased yes counts."])}
    b = {"description": rulebook.with_rules(STRICT, ["A thumbs-up emoji counts as yes."])}
    name, merged = merge_candidate("a", {"a": a, "b": b}, ["b"])  # type: ignore[misc]
    assert name == "merge of a and b"
    assert merged["description"].endswith("- A paraphrased yes counts.\n- A thumbs-up emoji counts as yes.")
    assert merge_candidate("a", {"a": a, "b": a}, ["b"]) is None


def test_a_call_longer_than_the_context_is_excerpted_not_failed() -> None:
    call = _long_call("Yes, please proceed.")
    fitted, note = fit(call, "a confirmation before changing a reservation", max_chars=600)
    assert note is not None and "the judge saw" in note
    kept = [t["content"] for t in fitted["transcript_json"]]
    assert "Shall I change the reservation to the later flight?" in kept and any("turns left out" in k for k in kept)
    assert fit(call, "x", max_chars=100_000) == (call, None)


def placeholder_model(body: dict[str, Any]) -> str:
    if rewriter.is_rewriter(body):
        return json.dumps({"hypotheses": [{"rule": "<a general rule>", "replaces": "", "rationale": "<one sentence>"}]})
    return model(body)


def test_a_placeholder_answer_never_becomes_a_candidate(api: Api, db: Any, start_runtime: RuntimeFactory,
                                                         fake_model: FakeOpenAIServer, settings: Any) -> None:
    fake_model.rule = placeholder_model
    start_runtime(settings)
    metric, calls = _setup(api)
    for c in calls["paraphrase"]:
        add_result(db, c, metric, False, "no explicit yes")
        _vote(api, c, metric, vote="disagree", expected_value=True, feedback=SAME_REASON)
    for c in calls["yes"] + calls["none"]:
        add_result(db, c, metric, c in calls["yes"], "read it")
        _vote(api, c, metric, vote="agree", feedback="Right.")
    run = _poll(api, api.post("/test_framework/metric-reviews/process_feedbacks/",
                              json={"metric_id": metric, "max_rewriter_calls": 1}).json()["progress_id"])
    assert run["status"] == "completed", run
    assert not any(c.startswith("hypothesis") for c in run["candidates"])
    assert "the rewriter's hypotheses refused: a placeholder ('<a general rule>')" in run["notes"]
    assert run["progress"]["rewriter_calls"] == 1 == run["progress"]["rewriter_budget"]
    # The rules from six identical reasons: one rule, without the call's time.
    assert run["improved_metric_description"].count("Sure, go ahead") == 1 and "00:12" not in run["improved_metric_description"]


def booking_trigger_model(body: dict[str, Any]) -> str:
    if rewriter.is_rewriter(body):
        return rewriter.answer()
    return model(body)


def test_a_trigger_that_reads_another_metric_works_in_labs_and_stays_code(
    api: Api, db: Any, start_runtime: RuntimeFactory, fake_model: FakeOpenAIServer, settings: Any
) -> None:
    fake_model.rule = booking_trigger_model
    start_runtime(settings)
    metric, calls = _setup(api)
    booked = api.metric("Booking made", description="Did the agent book a flight?")["id"]
    api.patch(f"/test_framework/v1/metrics/{metric}/", json={
        "evaluation_trigger": "custom", "trigger_type": "custom_code",
        "evaluation_trigger_custom_code": "_result = data['Booking made'] is True\n_explanation = 'booked'"})
    everything = [c for g in calls.values() for c in g]
    for c in everything:
        add_result(db, c, booked, c not in calls["none"], "booked")  # the "none" calls made no booking: N/A
    wait_for(api, api.post("/observability/v1/call-logs/evaluate_metrics/",
                           json={"call_logs": everything, "metrics": [metric]}).json()["job_id"])
    for c in calls["paraphrase"]:
        _vote(api, c, metric, vote="disagree", expected_value=True, feedback="a paraphrased confirmation counts as yes")
    for c in calls["yes"]:
        _vote(api, c, metric, vote="agree", feedback="Right.")
    for c in calls["none"]:
        _vote(api, c, metric, vote="disagree", expected_value=False, feedback="nothing was confirmed")
    run = _poll(api, api.post("/test_framework/metric-reviews/process_feedbacks/", json={"metric_id": metric}).json()["progress_id"])
    assert run["status"] == "completed", run
    held = run["scores"]["held_out"]["baseline"]
    assert held["errors"] == 0  # the trigger read data["Booking made"]: no call failed for a missing result
    assert "refined trigger" not in run["candidates"]
    assert run["improved_trigger_type"] == "custom_code" and run["improved_evaluation_trigger"] == "custom"
    assert any("its trigger is code: labs left it as code" in n for n in run["notes"])


def says_yes(body: dict[str, Any]) -> str:
    """A judge that passes a call when the user's own turn is a yes (as the transcript renders it)."""
    transcript = body["messages"][-1]["content"].rsplit("</T", 1)[0]
    return json.dumps({"result": "User: yes" in transcript, "explanation": "looked for the user's yes"})


def test_a_plain_text_call_converts_and_the_judge_gets_its_transcript(
    api: Api, db: Any, start_runtime: RuntimeFactory, fake_model: FakeOpenAIServer, settings: Any
) -> None:
    fake_model.rule = says_yes
    start_runtime(settings)
    agent = api.agent()
    metric = api.metric("confirms", eval_type="binary_workflow_adherence", description=STRICT)["id"]
    for i in range(4):
        answer = "User: yes" if i % 2 else "User: I'd rather not."
        text = f"Agent: Shall I book flight ref-{i}?\n{answer}\nAgent: Noted, thank you for calling about {i}."
        r = api.post("/observability/v1/observe/", json={"agent": agent, "call_id": f"plain{i}", "transcript": text,
                                                        "transcript_type": "text", "metadata": {"booking_channel": "web"}})
        assert r.status_code in (200, 201), r.text
        add_result(db, r.json()["id"], metric, bool(i % 2), "read it")
        _vote(api, r.json()["id"], metric, vote="agree", feedback="right")
    cid = api.post(f"/api/v1/metrics/{metric}/to_custom_code/", json={}).json()["conversion_id"]
    deadline = time.monotonic() + 60
    while (out := api.get(f"/api/v1/conversions/{cid}/").json())["status"] not in ("completed", "failed"):
        assert time.monotonic() < deadline, out
        time.sleep(0.1)
    assert out["status"] == "completed" and out["failed"] == 0, out
    assert out["agreement"]["code"]["num_correct"] == out["agreement"]["judge"]["num_correct"] == 4
    assert out["in_sample"] is True and any("in-sample" in n for n in out["notes"])  # 4 calls: said so
    nested = [b["messages"][-1]["content"] for b in fake_model.stats.bodies if "(turn 2) User:" in b["messages"][-1]["content"]]
    assert len(nested) == 4 and sum("(turn 2) User: yes" in n for n in nested) == 2


def test_generated_code_reads_a_transcript_that_has_only_text() -> None:
    """A call stored with text and no turns (a test-set item, an old import) still sends its text, and
    the metadata the criterion names."""
    import asyncio

    from judgelab.evaluation.sandbox import run_custom_code
    from judgelab.labs.to_code import generate
    from judgelab.metrics.definition import MetricContent

    code = generate("m", 1, MetricContent(description="Pass when the customer says yes on the booking_channel."),
                    ["yes", "book"])
    seen: list[dict[str, Any]] = []

    async def nested(prompt: str, eval_type: str, enum_values: Any, transcript: str | None = None,
                     context: str | None = None) -> dict[str, Any]:
        seen.append({"transcript": transcript, "context": context})
        return {"result": True, "explanation": "yes"}

    data = {"transcript": "Agent: Shall I book it?\nUser: yes\nAgent: Done.", "transcript_json": [],
            "agent_description": "", "metadata": {"booking_channel": "web", "unrelated": 1}, "dynamic_variables": {}}
    ran = asyncio.run(run_custom_code(code, data, nested_judge=nested))
    assert ran.error is None, ran.error
    assert seen[0]["transcript"] == "(turn 1) Agent: Shall I book it?\n(turn 2) User: yes\n(turn 3) Agent: Done."
    assert seen[0]["context"] == "Call facts:\nmetadata.booking_channel = web"


def test_the_engine_notes_an_excerpted_call(monkeypatch: Any) -> None:
    monkeypatch.setattr(engine, "_MAX_CHARS", [600])
    seen: list[str] = []

    class Client:
        async def complete(self, request: Any) -> Any:
            from judgelab.judges.types import ChatResponse

            seen.append(request.messages[-1].content)
            return ChatResponse(text=json.dumps({"result": True, "explanation": "confirmed"}))

    import asyncio

    from judgelab.metrics.definition import MetricContent

    out = asyncio.run(engine.evaluate(MetricContent(description="a confirmation before changing a reservation"),
                                      _long_call("Yes, please proceed."), lambda _p: Client(), "fake/m"))  # type: ignore[arg-type,return-value]
    assert out.error is None and out.value is True
    assert out.extra["excerpted"].startswith("the call (") and "Judged on an excerpt" in out.explanation
    assert "Yes, please proceed." in seen[0] and "line 5." not in seen[0]
