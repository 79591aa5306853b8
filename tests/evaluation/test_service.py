"""Evaluating and storing results on both databases, with the result cache."""

from __future__ import annotations

import asyncio
import json

from sqlalchemy import func, select

from judgelab.db import Database
from judgelab.db.models import MetricResult
from judgelab.evaluation.group import evaluate_pairs
from judgelab.judges.client import JudgeClient
from judgelab.judges.providers.fake import FakeProvider
from tests.conftest import Api

CODE = "_result = data['asks to cancel'] is True and 'Yes' in data['transcript']\n_explanation = 'combined'\n"


def _judge_rule(request) -> str:  # type: ignore[no-untyped-def]
    return json.dumps({"result": "cancel" in request.messages[1].content, "explanation": "looked"})


def _run(db: Database, api: Api, calls: list[int], metrics: list[int], fake: FakeProvider, **kw):  # type: ignore[no-untyped-def]
    client = JudgeClient(fake)
    return asyncio.run(evaluate_pairs(db, api.project_id, calls, metrics, {"fake": client}.__getitem__, "fake/judge", **kw))


def _rows(db: Database) -> int:
    with db.session() as s:
        return s.scalar(select(func.count()).select_from(MetricResult)) or 0


def test_results_are_stored_and_code_metrics_read_judge_results(api: Api, db: Database) -> None:
    agent = api.agent()
    call = api.call(agent, "c1", "Yes, please cancel my booking")
    judge = api.metric("asks to cancel", description="Does the caller ask to cancel?")
    code = api.metric("combined", type="custom_code", custom_code=CODE, description="")
    fake = FakeProvider(rule=_judge_rule)
    report = _run(db, api, [call["id"]], [code["id"], judge["id"]], fake)
    assert (report.total, report.done, report.errors, report.llm_calls, report.cache_hits) == (2, 2, 0, 1, 0)
    results = {r["name"]: r for r in api.get(f"/observability/v1/call-logs-external/{call['id']}/").json()["evaluation"]["metrics"]}
    assert results["asks to cancel"]["value"] is True and results["asks to cancel"]["score"] == 5.0
    assert results["combined"]["value"] is True and results["combined"]["explanation"] == "combined"
    assert results["asks to cancel"]["model"] == "fake/judge" and results["asks to cancel"]["input_tokens"] > 0


def test_unchanged_reruns_make_no_llm_call_and_force_does(api: Api, db: Database) -> None:
    agent = api.agent()
    calls = [api.call(agent, f"c{i}", f"please cancel order {i}")["id"] for i in range(3)]
    metric = api.metric("asks to cancel")
    fake = FakeProvider(rule=_judge_rule)
    first = _run(db, api, calls, [metric["id"]], fake)
    assert first.llm_calls == 3 and _rows(db) == 3
    again = _run(db, api, calls, [metric["id"]], fake)
    assert again.llm_calls == 0 and again.cache_hits == 3 and _rows(db) == 3 and len(fake.requests) == 3
    forced = _run(db, api, calls, [metric["id"]], fake, force=True)
    assert forced.llm_calls == 3 and _rows(db) == 6


def test_a_new_version_reevaluates_and_a_revert_reuses_old_results(api: Api, db: Database) -> None:
    agent = api.agent()
    call = api.call(agent, "c1", "please cancel")["id"]
    metric = api.metric("asks to cancel")
    fake = FakeProvider(rule=_judge_rule)
    _run(db, api, [call], [metric["id"]], fake)
    api.patch(f"/test_framework/v1/metrics/{metric['id']}/", json={"description": "Stricter: does the caller ask to cancel?"})
    assert _run(db, api, [call], [metric["id"]], fake).llm_calls == 1
    api.post(f"/test_framework/v1/metrics/{metric['id']}/revert/", json={"version": 1})
    reverted = _run(db, api, [call], [metric["id"]], fake)
    assert reverted.llm_calls == 0 and reverted.cache_hits == 1 and len(fake.requests) == 2
    latest = api.get(f"/observability/v1/call-logs-external/{call}/").json()["evaluation"]["metrics"][0]
    assert latest["metric_version"] == 3 and "copied_from_result" in latest["extra"]
    # A changed call is a new question.
    api.call(agent, "c1", "actually keep it")
    assert _run(db, api, [call], [metric["id"]], fake).llm_calls == 1


def test_errors_are_stored_as_errors_and_never_reused(api: Api, db: Database) -> None:
    agent = api.agent()
    call = api.call(agent)["id"]
    metric = api.metric()
    bad = FakeProvider(rule=lambda r: "no idea")
    report = _run(db, api, [call], [metric["id"]], bad)
    assert report.errors == 1 and report.llm_calls == 2
    stored = api.get(f"/observability/v1/call-logs-external/{call}/").json()["evaluation"]["metrics"][0]
    assert stored["error"] and stored["value"] is None and stored["score"] is None
    good = FakeProvider(rule=_judge_rule)
    assert _run(db, api, [call], [metric["id"]], good).llm_calls == 1


def test_identical_calls_share_a_verdict(api: Api, db: Database) -> None:
    agent = api.agent()
    twins = [api.call(agent, f"t{i}", "please cancel")["id"] for i in range(2)]
    metric = api.metric("asks to cancel")
    report = _run(db, api, twins, [metric["id"]], FakeProvider(rule=_judge_rule))
    assert report.llm_calls == 1 and report.cache_hits == 1 and _rows(db) == 2


def test_code_metrics_run_after_the_code_metrics_they_read(api: Api, db: Database) -> None:
    agent = api.agent()
    call = api.call(agent, "c1", "Yes, please cancel my booking")["id"]
    judge = api.metric("asks to cancel", description="Does the caller ask to cancel?")
    first = api.metric("combined", type="custom_code", custom_code=CODE, description="")
    second = api.metric("final", type="custom_code", description="",
                        custom_code="_result = data['combined'] is True\n_explanation = 'read combined'")
    report = _run(db, api, [call], [second["id"], first["id"], judge["id"]], FakeProvider(rule=_judge_rule))
    assert report.errors == 0
    results = {r["name"]: r for r in api.get(f"/observability/v1/call-logs-external/{call}/").json()["evaluation"]["metrics"]}
    assert results["final"]["value"] is True and results["combined"]["value"] is True


def test_numeric_and_enum_results_read_back_on_both_databases(api: Api, db: Database) -> None:
    agent = api.agent()
    call = api.call(agent)["id"]
    score = api.metric("politeness", eval_type="numeric", description="Politeness from 1 to 5")
    ratio = api.metric("share", eval_type="continuous_qualitative", description="Share of questions answered")
    def rule(request):  # type: ignore[no-untyped-def]
        share = "Share of questions" in request.messages[-1].content
        return '{"result": 0.75, "explanation": "most"}' if share else '{"result": 4, "explanation": "polite"}'

    report = _run(db, api, [call], [score["id"], ratio["id"]], FakeProvider(rule=rule))
    assert report.errors == 0
    values = {r["name"]: r["value"] for r in api.get(f"/observability/v1/call-logs-external/{call}/").json()["evaluation"]["metrics"]}
    assert values == {"politeness": 4, "share": 0.75}
