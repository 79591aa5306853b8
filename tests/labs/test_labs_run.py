"""The seed's labs loop over HTTP against the fake model: metric, calls, evaluation, votes,
process_feedbacks, polling, the proposal, PATCH, rerun."""

from __future__ import annotations

import json
import time
from typing import Any

from judgelab.testing.fake_openai import FakeOpenAIServer
from tests.conftest import Api
from tests.jobs.conftest import RuntimeFactory
from tests.jobs.test_jobs import wait_for
from tests.labs import rewriter

STRICT = "Pass only when the customer says the exact word yes before the agent books."
PARAPHRASE_RULE = " A paraphrased confirmation such as 'go ahead' counts as a yes."


def model(body: dict[str, Any]) -> str:
    """A judge that follows its criterion literally, and a rewriter that edits what reasons name."""
    if rewriter.is_rewriter(body):
        return rewriter.answer(PARAPHRASE_RULE.strip())
    text = body["messages"][-1]["content"]
    transcript = text.rsplit("</T", 1)[0].rsplit(">", 1)[-1] if "<T" in text else text
    criterion = rewriter.criterion_of(body)
    if "Customer: yes" in transcript:
        result = True
    elif "go ahead" in transcript:
        result = "paraphrase" in criterion.lower()
    else:
        result = False
    return json.dumps({"result": result, "explanation": "read the confirmation"})


def _poll(api: Api, progress_id: str, until: tuple[str, ...] = ("completed", "failed"), timeout: float = 90) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = api.get(f"/api/v1/labs/{progress_id}/")
        assert r.status_code == 200, r.text
        if r.json()["status"] in until:
            return dict(r.json())
        time.sleep(0.1)
    raise AssertionError(f"labs run did not reach {until}: {r.json()}")


def _setup(api: Api) -> tuple[int, dict[str, list[int]]]:
    agent = api.agent()
    calls: dict[str, list[int]] = {"yes": [], "paraphrase": [], "none": []}
    for i in range(6):
        calls["yes"].append(api.call(agent, f"y{i}", f"Book flight ref-y{i}? Customer: yes")["id"])
        calls["paraphrase"].append(api.call(agent, f"p{i}", f"Book flight ref-p{i}? Sure, go ahead")["id"])
        calls["none"].append(api.call(agent, f"n{i}", f"I booked flight ref-n{i} for you")["id"])
    metric = api.metric("confirms before booking", eval_type="binary_workflow_adherence", description=STRICT)
    return metric["id"], calls


def labelled(api: Api, db: Any) -> tuple[int, dict[str, list[int]]]:
    """The 18 calls with the strict judge's results stored (no job needed) and a reviewer's votes:
    the paraphrases labelled pass, the rest agreed with."""
    from tests.conftest import add_result

    metric, calls = _setup(api)
    for c in calls["paraphrase"] + calls["none"]:
        add_result(db, c, metric, False, "no explicit yes")
    for c in calls["yes"]:
        add_result(db, c, metric, True, "said yes")
    for c in calls["paraphrase"]:
        _vote(api, c, metric, vote="disagree", expected_value=True, feedback="a paraphrased confirmation counts as yes")
    for c in calls["yes"] + calls["none"]:
        _vote(api, c, metric, vote="agree", feedback="Right.")
    return metric, calls


def _vote(api: Api, call: int, metric: int, **body: Any) -> None:
    r = api.post(f"/observability/v1/call-logs-external/{call}/mark_metric_vote/", json={"metric_id": metric, **body})
    assert r.status_code in (200, 201), r.text


def test_the_labs_loop_end_to_end(api: Api, start_runtime: RuntimeFactory, fake_model: FakeOpenAIServer, settings: Any) -> None:
    fake_model.rule = model
    start_runtime(settings)
    metric, calls = _setup(api)
    everything = [c for group in calls.values() for c in group]
    job = wait_for(api, api.post("/observability/v1/call-logs/evaluate_metrics/",
                                 json={"call_logs": everything, "metrics": [metric]}).json()["job_id"])
    assert job["status"] == "completed"
    for c in calls["paraphrase"]:
        _vote(api, c, metric, vote="disagree", expected_value=True,
              feedback="At 00:04 the customer said 'go ahead': a paraphrased confirmation counts as yes.")
    for c in calls["yes"] + calls["none"]:
        _vote(api, c, metric, vote="agree", feedback="Right.")
    started = api.post("/test_framework/metric-reviews/process_feedbacks/", json={"metric_id": metric})
    assert started.status_code == 202, started.text
    run = _poll(api, started.json()["progress_id"])
    assert run["status"] == "completed", run
    assert PARAPHRASE_RULE.strip() in run["improved_metric_description"] and run["applied"] is False
    assert run["diff"].startswith("--- current\n+++ proposal\n") and " " + STRICT + "\n" in run["diff"]
    assert "+- " + PARAPHRASE_RULE.strip() + "\n" in run["diff"]
    held = run["scores"]["held_out"]
    assert held["proposal"]["num_total"] == held["baseline"]["num_total"] == run["split"]["held_out"] == 6
    assert held["baseline"]["kappa"]["n"] == 6 and held["proposal"]["accuracy"]["low"] is not None
    assert run["verdict"]["n"] == 6 and run["verdict"]["broken"] == 0
    assert run["noise_floor"] == 0.0 and run["determinism"]["measured_on"] == 4  # measured once, on 4 requests
    assert run["progress"]["judge_calls"] <= run["progress"]["judge_budget"] == 100
    assert run["progress"]["rewriter_calls"] == 1
    # The split never leaks: no held-out conversation reached the rewriter.
    feedback = {f"feedback:{f['id']}": f["call_log"] for f in
                api.get(f"/test_framework/v1/metrics/{metric}/feedback/", params={"page_size": 200}).json()["results"]}
    refs = {c: f"ref-{k[0]}{i}" for k, group in calls.items() for i, c in enumerate(group)}
    held_refs = {refs[feedback[key]] for key in run["held_out_items"]}
    # The strict prompt gets exactly the held-out paraphrases wrong; the proposal gets none wrong.
    held_paraphrases = sum(ref.startswith("ref-p") for ref in held_refs)
    assert held["baseline"]["num_correct"] == 6 - held_paraphrases and held["proposal"]["num_correct"] == 6
    # Every fix is a paraphrase; with no random-audit labels the best this can say is "promising".
    assert run["verdict"]["fixed"] == held_paraphrases and held_paraphrases >= 1
    expected = "promising, unverified" if held_paraphrases >= 5 else "not significant"  # exact p = 2^-fixed <= 0.05
    assert run["verdict"]["verdict"] == expected and run["verdict"]["p"] == 0.5 ** held_paraphrases
    assert sum(ref.startswith("ref-n") for ref in held_refs) == 2  # stratified: a third of each label
    rewriter_prompts = [b["messages"][1]["content"] for b in fake_model.stats.bodies
                        if rewriter.is_rewriter(b)]
    assert len(rewriter_prompts) == 1 and "ref-p" in rewriter_prompts[0]
    assert not any(ref in rewriter_prompts[0] for ref in held_refs)
    # The job above evaluated this version with this model: labs reused those 18 verdicts, paying none twice.
    assert run["split"]["baseline_reused"] == 18
    # GEPA's split: the rewriter saw the reflection part only, candidates were scored on the selection part.
    reflection, selection = set(run["reflection_items"]), set(run["selection_items"])
    assert reflection.isdisjoint(selection) and reflection | selection == set(run["trained_on"])
    assert not any(refs[feedback[k]] in rewriter_prompts[0] for k in selection)
    assert all(refs[feedback[k]] in rewriter_prompts[0] for k in reflection if refs[feedback[k]].startswith("ref-p"))
    # Its reflective dataset: the judge's own explanation and the decisive moment, numbered.
    assert "Judge's explanation: read the confirmation" in rewriter_prompts[0] and "(turn 2) [00:03] User: Book flight" in rewriter_prompts[0]
    # Apply (a new version), rerun: the paraphrased confirmations now pass.
    r = api.patch(f"/test_framework/v1/metrics/{metric}/", json={"description": run["improved_metric_description"]})
    assert r.status_code == 200 and r.json()["version"] == 2
    rerun = wait_for(api, api.post("/observability/v1/call-logs/rerun_evaluation/",
                                   json={"call_logs": calls["paraphrase"], "metrics": [metric]}).json()["job_id"])
    assert rerun["status"] == "completed" and rerun["llm_calls"] == 6
    for c in calls["paraphrase"]:
        assert api.get(f"/observability/v1/call-logs-external/{c}/").json()["evaluation"]["metrics"][0]["value"] is True


def test_contradictions_pause_the_run_until_answered(api: Api, start_runtime: RuntimeFactory,
                                                      fake_model: FakeOpenAIServer, settings: Any) -> None:
    fake_model.rule = model
    start_runtime(settings)
    metric, calls = _setup(api)
    for c in calls["yes"] + calls["none"]:
        _vote(api, c, metric, vote="disagree" if c in calls["none"][:1] else "agree", expected_value=c in calls["yes"],
              feedback="checked")
    # Two reviewers label the same call opposite ways.
    _vote(api, calls["paraphrase"][0], metric, expected_value=True, vote="disagree", feedback="paraphrase is fine", reviewer="ana")
    _vote(api, calls["paraphrase"][0], metric, expected_value=False, vote="agree", feedback="needs a real yes", reviewer="bo")
    progress_id = api.post("/test_framework/metric-reviews/process_feedbacks/", json={"metric_id": metric}).json()["progress_id"]
    asked = _poll(api, progress_id, until=("needs_input", "completed", "failed"))
    assert asked["status"] == "needs_input" and asked["stage"] == "contradictions"
    assert {i["reviewer"] for i in asked["question"]["items"]} == {"ana", "bo"}
    bad = api.post("/test_framework/metric-reviews/process_feedbacks_answer/", json={"progress_id": progress_id, "answer": "maybe"})
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "answer"
    # The seed platform's vocabulary on its path while the run waits; its form of answer, keyed by question id.
    seed = api.get("/test_framework/metric-reviews/process_feedbacks_progress/", params={"progress_id": progress_id}).json()
    assert seed["status"] == "in_progress" and seed["judgelab_status"] == "needs_input" and "output" not in seed
    qid = asked["question"]["id"]
    assert qid.startswith("q-") and seed["question"]["id"] == qid
    wrong = api.post("/test_framework/metric-reviews/process_feedbacks_answer/",
                     json={"progress_id": progress_id, "answers": {"q-other": True}})
    assert wrong.status_code == 400 and wrong.json()["errors"][0]["field"] == "answers" and qid in wrong.json()["detail"]
    ok = api.post("/test_framework/metric-reviews/process_feedbacks_answer/",
                  json={"progress_id": progress_id, "answers": {qid: "true"}})
    assert ok.status_code == 200, ok.text
    done = _poll(api, progress_id)
    assert done["status"] == "completed" and done["question"] is None, done
    again = api.post("/test_framework/metric-reviews/process_feedbacks_answer/", json={"progress_id": progress_id, "action": "skip"})
    assert again.status_code == 409


def test_budget_and_bad_requests(api: Api, start_runtime: RuntimeFactory, fake_model: FakeOpenAIServer, settings: Any) -> None:
    fake_model.rule = model
    metric, calls = _setup(api)
    few = api.post("/test_framework/metric-reviews/process_feedbacks/", json={"metric_id": metric})
    assert few.status_code == 400 and "at least 6" in few.json()["detail"]
    for c in calls["paraphrase"] + calls["yes"]:
        _vote(api, c, metric, vote="disagree", expected_value=True, feedback="a paraphrased yes counts")
    assert api.post("/test_framework/metric-reviews/process_feedbacks/",
                    json={"metric_id": metric, "metric_type": "custom_code"}).status_code == 400
    assert api.post("/test_framework/metric-reviews/process_feedbacks/", json={"metric_id": 99999}).status_code == 404
    bogus = api.post("/test_framework/metric-reviews/process_feedbacks/", json={"metric_id": metric, "generators": ["magic"]})
    assert bogus.status_code == 400 and bogus.json()["errors"][0]["field"] == "generators"
    assert api.get("/test_framework/metric-reviews/process_feedbacks_progress/", params={"progress_id": "nope"}).status_code == 404
    start_runtime(settings)
    tight = api.post("/test_framework/metric-reviews/process_feedbacks/", json={"metric_id": metric, "max_judge_calls": 10})
    run = _poll(api, tight.json()["progress_id"])
    assert run["status"] == "failed" and "budget" in run["message"] and run["progress"]["judge_calls"] == 0
    seed = api.get("/test_framework/metric-reviews/process_feedbacks_progress/", params={"progress_id": run["progress_id"]}).json()
    assert seed["status"] == "error" and seed["output"] == {"error": run["message"]} and seed["judgelab_status"] == "failed"
    unscored = api.post("/test_framework/metric-reviews/process_feedbacks/", json={"metric_id": metric, "skip_evaluation": True})
    run = _poll(api, unscored.json()["progress_id"])
    assert run["status"] == "completed" and run["scored"] is False and run["verdict"]["verdict"] == "unscored"
    assert run["progress"]["judge_calls"] == 0 and run["improved_metric_description"] != STRICT


def test_a_killed_labs_run_resumes_without_repaying_judge_calls(
    api: Api, db: Any, system_db: tuple[str, str], fake_model: FakeOpenAIServer, tmp_path: Any
) -> None:

    from tests.jobs.test_kill_resume import _worker, kill_when

    fake_model.rule = model
    metric, _calls = labelled(api, db)
    fake_model.latency = 0.15
    progress_id = api.post("/test_framework/metric-reviews/process_feedbacks/", json={"metric_id": metric}).json()["progress_id"]
    kill_when(_worker(db, system_db, fake_model, tmp_path), lambda: fake_model.stats.answered >= 12)
    paid_before = fake_model.stats.requests
    worker = _worker(db, system_db, fake_model, tmp_path)
    try:
        run = _poll(api, progress_id, timeout=120)
    finally:
        worker.terminate()
        worker.wait(20)
    assert run["status"] == "completed", run
    needed = run["progress"]["judge_calls"] + run["progress"]["rewriter_calls"]
    # Everything paid before the kill was reused: only the requests in flight (2) were paid twice.
    assert paid_before >= 12 and needed <= fake_model.stats.requests <= needed + 2


def test_validation_reports_flips_and_marks_become_feedback(
    api: Api, start_runtime: RuntimeFactory, fake_model: FakeOpenAIServer, settings: Any
) -> None:
    fake_model.rule = model
    start_runtime(settings)
    metric, calls = _setup(api)
    everything = [c for group in calls.values() for c in group]
    wait_for(api, api.post("/observability/v1/call-logs/evaluate_metrics/",
                           json={"call_logs": everything, "metrics": [metric]}).json()["job_id"])
    for c in calls["paraphrase"][:3]:
        _vote(api, c, metric, vote="disagree", expected_value=True, feedback="a paraphrased confirmation counts")
    for c in calls["yes"][:3] + calls["none"][:3]:
        _vote(api, c, metric, vote="agree", feedback="Right.")
    proposal = STRICT + PARAPHRASE_RULE

    def validate(**body: Any) -> dict[str, Any]:
        r = api.post(f"/api/v1/metrics/{metric}/validate/", json=body)
        assert r.status_code == 202, r.text
        vid = r.json()["validation_id"]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            out = api.get(f"/api/v1/validations/{vid}/").json()
            if out["status"] in ("completed", "failed"):
                return dict(out)
            time.sleep(0.1)
        raise AssertionError(out)

    before = validate(description=proposal, sample=20)
    assert before["status"] == "completed" and before["validated"] == "proposal", before
    assert before["summary"] == {"fixed": 3, "regressed": 0, "changed": 3, "error": 0}
    assert before["checked"] == 18 and before["unchanged"] == 12
    changed = [f for f in before["flips"] if f["kind"] == "changed"]
    assert {f["call_log_id"] for f in changed} == set(calls["paraphrase"][3:])
    assert all(f["before"] is False and f["after"] is True for f in before["flips"])
    marked = api.post(f"/api/v1/validations/{before['progress_id']}/flips/{changed[0]['index']}/mark/",
                      json={"right": True, "feedback": "go ahead is a yes"})
    assert marked.status_code == 200, marked.text
    assert marked.json()["flips"][changed[0]["index"]]["marked"] == "right"
    votes = api.get(f"/test_framework/v1/metrics/{metric}/feedback/", params={"page_size": 200}).json()["results"]
    new_vote = next(v for v in votes if v["call_log"] == changed[0]["call_log_id"])
    assert new_vote["label"] is True and new_vote["vote"] == "disagree"
    assert api.post(f"/api/v1/validations/{before['progress_id']}/flips/99/mark/", json={"right": True}).status_code == 404
    # Applied as version 2, validated against version 1's stored verdicts: the same flips.
    api.patch(f"/test_framework/v1/metrics/{metric}/", json={"description": proposal})
    after = validate(sample=20)
    assert after["validated"] == "applied version" and after["summary"]["regressed"] == 0
    assert after["summary"]["fixed"] == 4 and after["summary"]["changed"] == 2  # the marked flip is now labelled


def _cli_env(db: Any, backend: str, system_db: tuple[str, str], fake_model: FakeOpenAIServer, request: Any,
             monkeypatch: Any) -> None:
    """Point the CLI at the test's database, DBOS store and fake model through the variables a user sets."""
    from tests.conftest import PG_URL

    url = db.engine.url.render_as_string(hide_password=False) if backend == "sqlite" else \
        f"{PG_URL}?options=-csearch_path%3D{request.getfixturevalue('_pg_schema')[0]}"
    for name, value in {"JUDGELAB_DATABASE_URL": url, "JUDGELAB_JOBS_DATABASE_URL": system_db[0],
                        "JUDGELAB_JOBS_SCHEMA": system_db[1], "JUDGELAB_MODEL": "openai/judge-1",
                        "OPENAI_BASE_URL": fake_model.base_url, "OPENAI_API_KEY": "test"}.items():
        monkeypatch.setenv(name, value)


def test_judgelab_validate(api: Api, db: Any, backend: str, system_db: tuple[str, str], fake_model: FakeOpenAIServer,
                           request: Any, monkeypatch: Any, tmp_path: Any) -> None:
    from typer.testing import CliRunner

    from judgelab.cli import app
    from judgelab.config import get_settings
    from tests.conftest import add_result

    fake_model.rule = model
    metric, calls = _setup(api)
    for c in calls["paraphrase"]:
        add_result(db, c, metric, False, "no explicit yes")
        _vote(api, c, metric, vote="disagree", expected_value=True, feedback="a paraphrased confirmation counts")
    proposal = tmp_path / "proposal.txt"
    proposal.write_text(STRICT + PARAPHRASE_RULE)
    _cli_env(db, backend, system_db, fake_model, request, monkeypatch)
    get_settings.cache_clear()
    try:
        out = CliRunner().invoke(app, ["validate", "--metric", str(metric), "--description-file", str(proposal)])
    finally:
        get_settings.cache_clear()
    assert out.exit_code == 0, out.output
    assert "6 calls checked (proposal): 6 fixed, 0 regressed, 0 changed (unlabelled), 0 errors, 0 unchanged" in out.output


def test_to_custom_code_sends_fewer_tokens_and_keeps_agreement(
    api: Api, db: Any, start_runtime: RuntimeFactory, fake_model: FakeOpenAIServer, settings: Any
) -> None:
    from judgelab.labs.to_code import keywords
    from tests.conftest import add_result

    assert keywords("Pass only when the customer confirms the booking with an explicit yes.", []) == \
        ["confirm", "book", "explicit", "yes"]
    fake_model.rule = model
    start_runtime(settings)
    agent = api.agent(description="Weather small talk rules.\n\nBooking: always confirm before you book.")
    metric = api.metric("confirms before booking",
                        description="Pass only when the customer confirms the booking with an explicit yes.")["id"]
    cities = ["Paris", "Lima", "Oslo", "Cairo", "Quito", "Perth"]
    for i in range(6):
        # Small talk about a different city per call, so the calls are not near-duplicates of each other.
        filler = [{"role": r, "content": f"Let me tell you about {cities[i]} and its weather, part {n}.",
                   "start_time": float(n)} for n, r in enumerate(["agent", "user"] * 10)]
        answer = "Customer: yes" if i % 2 else "I'd rather not."
        turns = [*filler, {"role": "agent", "content": f"Shall I book flight ref-{i} now?", "start_time": 30.0},
                 {"role": "user", "content": answer, "start_time": 32.0}]
        call = api.post("/observability/v1/observe/", json={"agent": agent, "call_id": f"t{i}", "transcript_json": turns}).json()["id"]
        add_result(db, call, metric, bool(i % 2), "read it")
        _vote(api, call, metric, vote="agree", feedback="right")
    r = api.post(f"/api/v1/metrics/{metric}/to_custom_code/", json={})
    assert r.status_code == 202, r.text
    cid = r.json()["conversion_id"]
    deadline = time.monotonic() + 60
    while (out := api.get(f"/api/v1/conversions/{cid}/").json())["status"] not in ("completed", "failed"):
        assert time.monotonic() < deadline, out
        time.sleep(0.1)
    assert out["status"] == "completed", out
    judge, code = out["agreement"]["judge"], out["agreement"]["code"]
    assert judge["num_correct"] == code["num_correct"] == 3 and code["errors"] == 0, (out["failures"], out["agreement"])
    tokens = out["input_tokens_per_call"]
    assert tokens["code"] < tokens["judge"] and tokens["saved_share"] > 0.3, tokens
    # Measured on labelled calls the keyword choice did not see, with an interval; nothing failed.
    assert (out["keywords_from"], out["measured_on"], out["in_sample"], out["failed"]) == (3, 3, False, 0)
    interval = tokens["saved_share_interval"]
    assert interval["low"] <= tokens["saved_share"] <= interval["high"] and tokens["calls"] == 3
    assert out["agreement_difference"]["verdict"] == "not significant"
    assert "KEYWORDS" in out["custom_code"] and out["metric_body"]["type"] == "custom_code"
    # The generated metric is a valid custom_code metric.
    created = api.post("/test_framework/v1/metrics/", json=out["metric_body"])
    assert created.status_code == 201, created.text


def test_judgelab_to_code(api: Api, db: Any, backend: str, system_db: tuple[str, str], fake_model: FakeOpenAIServer,
                          request: Any, monkeypatch: Any, tmp_path: Any) -> None:
    from typer.testing import CliRunner

    from judgelab.cli import app
    from judgelab.config import get_settings
    from tests.conftest import add_result

    fake_model.rule = model
    metric, calls = _setup(api)
    for c in calls["yes"]:
        add_result(db, c, metric, True, "said yes")
        _vote(api, c, metric, vote="agree", feedback="right")
    _cli_env(db, backend, system_db, fake_model, request, monkeypatch)
    get_settings.cache_clear()
    code_file = tmp_path / "metric.py"
    try:
        out = CliRunner().invoke(app, ["to-code", "--metric", str(metric), "-o", str(code_file)])
    finally:
        get_settings.cache_clear()
    assert out.exit_code == 0, out.output
    assert "judge: 3/3 right; code: 3/3 right" in out.output  # measured on the 3 calls the keywords were not chosen on
    assert "KEYWORDS" in code_file.read_text() and "judge(CRITERION" in code_file.read_text()


def test_run_reviews_rescores_the_labelled_calls(api: Api, db: Any, start_runtime: RuntimeFactory,
                                                 fake_model: FakeOpenAIServer, settings: Any) -> None:
    from tests.conftest import add_result

    fake_model.rule = model
    start_runtime(settings)
    metric, calls = _setup(api)
    for c in calls["paraphrase"]:
        add_result(db, c, metric, False, "no explicit yes")
        _vote(api, c, metric, vote="disagree", expected_value=True, feedback="a paraphrased confirmation counts")
    api.patch(f"/test_framework/v1/metrics/{metric}/", json={"description": STRICT + PARAPHRASE_RULE})
    r = api.post(f"/test_framework/v1/metrics/{metric}/run_reviews/")
    assert r.status_code == 202, r.text
    out = _poll(api, r.json()["progress_id"])
    assert out["status"] == "completed" and out["summary"]["fixed"] == 6 and out["checked"] == 6


def test_a_run_claimed_before_a_crash_is_handed_to_dbos_on_restart(
    api: Api, db: Any, start_runtime: RuntimeFactory, fake_model: FakeOpenAIServer, settings: Any
) -> None:
    from sqlalchemy import update

    from judgelab.db.models import LabsRun
    from tests.conftest import add_result

    fake_model.rule = model
    metric, calls = _setup(api)
    for c in calls["paraphrase"]:
        add_result(db, c, metric, False, "no explicit yes")
        _vote(api, c, metric, vote="disagree", expected_value=True, feedback="a paraphrased confirmation counts")
    progress_id = api.post("/test_framework/metric-reviews/process_feedbacks/",
                           json={"metric_id": metric, "skip_evaluation": True}).json()["progress_id"]
    # As if a dispatcher had claimed it and died before enqueueing it.
    with db.session() as s:
        s.execute(update(LabsRun).where(LabsRun.id == progress_id).values(status="starting", executor_id="test"))
    start_runtime(settings, executor_id="test")
    assert _poll(api, progress_id)["status"] == "completed"


def _schedule_setup(api: Api, db: Any, paraphrases: int = 12) -> int:
    from tests.conftest import add_result

    agent = api.agent()
    metric = api.metric("confirms before booking", eval_type="binary_workflow_adherence", description=STRICT)["id"]
    for i in range(paraphrases):
        c = api.call(agent, f"sp{i}", f"Book flight ref-s{i}? Sure, go ahead")["id"]
        add_result(db, c, metric, False, "no explicit yes")
        _vote(api, c, metric, vote="disagree", expected_value=True, feedback="a paraphrased confirmation counts as yes")
    for i in range(6):
        c = api.call(agent, f"sn{i}", f"I booked flight ref-t{i} for you")["id"]
        add_result(db, c, metric, False, "nothing asked")
        _vote(api, c, metric, vote="agree", feedback="right")
    return metric


def audited(api: Api, db: Any, metric: int, paraphrases: int = 6, nones: int = 4) -> dict[str, Any]:
    """Calls nobody labelled, drawn by a random audit and labelled blind (source random_audit)."""
    from tests.conftest import add_result

    agent = api.agent("audited")
    kinds = {}
    for i in range(paraphrases):
        c = api.call(agent, f"ap{i}", f"Book flight ref-a{i}? Sure, go ahead")["id"]
        add_result(db, c, metric, False, "no explicit yes")
        kinds[c] = "paraphrase"
    for i in range(nones):
        c = api.call(agent, f"an{i}", f"I booked flight ref-b{i} for you")["id"]
        add_result(db, c, metric, False, "nothing asked")
        kinds[c] = "none"
    sample = api.post(f"/api/v1/metrics/{metric}/audit_sample/", json={"size": paraphrases + nones, "seed": 7}).json()
    assert sample["size"] == paraphrases + nones and all("verdict" not in c for c in sample["calls"])  # blind
    for entry in sample["calls"]:
        c = entry["call_log_id"]
        if kinds[c] == "paraphrase":
            _vote(api, c, metric, vote="disagree", expected_value=True, feedback="go ahead is a yes",
                  source="random_audit", audit_sample_id=sample["id"])
        else:
            _vote(api, c, metric, vote="agree", feedback="right", source="random_audit", audit_sample_id=sample["id"])
    return dict(sample)


def test_a_schedule_runs_labs_on_new_feedback_and_auto_applies_only_when_improved(
    api: Api, db: Any, start_runtime: RuntimeFactory, fake_model: FakeOpenAIServer, settings: Any
) -> None:
    from judgelab.labs.schedule import due_runs

    fake_model.rule = model
    metric = _schedule_setup(api, db)
    audited(api, db, metric)
    bad = api.put(f"/api/v1/metrics/{metric}/labs_schedule/", json={"enabled": True, "min_new_feedback": 0})
    assert bad.status_code == 422
    r = api.put(f"/api/v1/metrics/{metric}/labs_schedule/", json={"enabled": True, "auto_apply": True, "min_new_feedback": 6})
    assert r.status_code == 200 and r.json()["auto_apply"] is True
    start_runtime(settings)
    from dbos import DBOS

    assert DBOS.get_schedule("judgelab-labs-schedules") is not None  # the runtime registered the tick
    # What the every-minute DBOS schedule runs, called now rather than waiting for the minute.
    with db.session() as s:
        started = due_runs(s)
    assert len(started) == 1
    run = _poll(api, started[0])
    assert run["status"] == "completed" and run["scheduled"] is True
    assert run["verdict"]["verdict"] == "improved", run["verdict"]
    # On the 10 audit labels: the 6 paraphrases fixed, nothing broken (exact p = 1/64).
    assert (run["verdict"]["fixed"], run["verdict"]["broken"], run["verdict"]["p"]) == (6, 0, 1 / 64)
    assert run["verdict"]["evidence"].startswith("random audit") and run["split"]["audit"] == 10
    assert run["applied"] is True and run["auto_apply"].startswith("applied as version 2")
    current = api.get(f"/test_framework/v1/metrics/{metric}/").json()
    assert current["version"] == 2 and "paraphrase" in current["description"].lower()
    # No new feedback since: nothing more to run.
    with db.session() as s:
        assert due_runs(s) == []
    assert api.get(f"/api/v1/metrics/{metric}/labs_schedule/").json()["scheduled_through_feedback_id"] is not None


def test_a_read_only_schedule_leaves_the_proposal_for_review(
    api: Api, db: Any, start_runtime: RuntimeFactory, fake_model: FakeOpenAIServer, settings: Any
) -> None:
    from judgelab.labs.schedule import due_runs

    fake_model.rule = model
    metric = _schedule_setup(api, db)
    api.put(f"/api/v1/metrics/{metric}/labs_schedule/", json={"enabled": True})
    start_runtime(settings)
    with db.session() as s:
        started = due_runs(s)
    run = _poll(api, started[0])
    assert run["status"] == "completed" and run["applied"] is False and "auto_apply" not in run
    assert api.get(f"/test_framework/v1/metrics/{metric}/").json()["version"] == 1


def test_auto_apply_never_acts_without_random_audit_evidence(
    api: Api, db: Any, start_runtime: RuntimeFactory, fake_model: FakeOpenAIServer, settings: Any
) -> None:
    from judgelab.labs.schedule import due_runs

    fake_model.rule = model
    metric = _schedule_setup(api, db, paraphrases=24)  # 30 error-driven labels, no audit
    api.put(f"/api/v1/metrics/{metric}/labs_schedule/", json={"enabled": True, "auto_apply": True})
    start_runtime(settings)
    with db.session() as s:
        started = due_runs(s)
    run = _poll(api, started[0])
    assert run["verdict"]["verdict"] == "promising, unverified", run["verdict"]
    assert run["verdict"]["learning_verdict"] == "improved" and run["verdict"]["next_step"]["action"] == "audit_sample"
    assert run["verdict"]["fixed"] == 8 and run["verdict"]["broken"] == 0 and run["verdict"]["p"] == 0.5 ** 8
    assert run["applied"] is False and run["auto_apply"].startswith("not applied")
    assert api.get(f"/test_framework/v1/metrics/{metric}/").json()["version"] == 1
