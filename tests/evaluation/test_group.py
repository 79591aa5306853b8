"""Evaluating a group of (call, metric) pairs at once, as job chunks do: results written in groups,
a replay that pays nothing again, identical calls sharing one verdict, and failures that stay
explicit without stopping the rest."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

from sqlalchemy import delete, func, select

from judgelab.db import Database
from judgelab.db.models import CallLog, Job, JobItem, Metric, MetricResult
from judgelab.evaluation.group import evaluate_group
from judgelab.judges.client import JudgeClient
from judgelab.judges.providers.fake import FakeProvider
from tests.conftest import Api


def _rule(request: Any) -> str:
    return json.dumps({"result": "cancel" in request.messages[-1].content, "explanation": "looked"})


def _job(db: Database, project_id: int) -> str:
    job_id = str(uuid.uuid4())
    with db.session() as s:
        s.add(Job(id=job_id, project_id=project_id, kind="evaluation", status="running", params={}, total=0))
    return job_id


def _group(db: Database, api: Api, pairs: list[tuple[int, int, int]], fake: FakeProvider, **kw: Any) -> list[Any]:
    client = JudgeClient(fake)
    return asyncio.run(evaluate_group(db, api.project_id, pairs, {"fake": client}.__getitem__, "fake/judge", **kw))


def _version(db: Database, metric: dict[str, Any]) -> int:
    with db.session() as s:
        found = s.get(Metric, metric["id"])
        assert found is not None
        return found.current.id


def test_a_replayed_group_pays_nothing_and_returns_what_was_stored(api: Api, db: Database) -> None:
    agent = api.agent()
    calls = [api.call(agent, f"g{i}", f"please cancel booking {i}" if i % 2 else f"change seat {i}")["id"] for i in range(7)]
    metric = api.metric("asks to cancel")
    pairs = [(c, metric["id"], _version(db, metric)) for c in calls]
    job_id = _job(db, api.project_id)
    fake = FakeProvider(rule=_rule)
    first = _group(db, api, pairs, fake, job_id=job_id, force=True)
    assert [i.outcome for i in first] == ["evaluated"] * 7 and len(fake.requests) == 7
    assert [i.value for i in first] == [bool(i % 2) for i in range(7)]
    again = _group(db, api, pairs, fake, job_id=job_id, force=True)  # a replay of the same step
    assert len(fake.requests) == 7, "a replayed group asked the model again"
    assert [i.result_id for i in again] == [i.result_id for i in first]
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(MetricResult)) == 7
        assert s.scalar(select(func.count()).select_from(JobItem).where(JobItem.job_id == job_id)) == 7


def test_identical_calls_share_one_verdict_unless_forced(api: Api, db: Database) -> None:
    agent = api.agent()
    calls = [api.call(agent, f"same{i}", "please cancel my booking")["id"] for i in range(3)]
    metric = api.metric("asks to cancel")
    pairs = [(c, metric["id"], _version(db, metric)) for c in calls]
    fake = FakeProvider(rule=_rule)
    items = _group(db, api, pairs, fake, job_id=_job(db, api.project_id))
    assert len(fake.requests) == 1 and [i.outcome for i in items] == ["evaluated", "cached", "cached"]
    assert [i.value for i in items] == [True, True, True] and len({i.result_id for i in items}) == 3
    with db.session() as s:
        copied = s.scalars(select(MetricResult.extra).where(MetricResult.id.in_([i.result_id for i in items[1:]]))).all()
    assert [e["copied_from_result"] for e in copied] == [items[0].result_id] * 2
    forced = _group(db, api, pairs, fake, job_id=_job(db, api.project_id), force=True)
    assert len(fake.requests) == 4 and [i.outcome for i in forced] == ["evaluated"] * 3


def test_a_vanished_call_is_an_explicit_error_and_the_rest_is_evaluated(api: Api, db: Database) -> None:
    agent = api.agent()
    calls = [api.call(agent, f"v{i}", f"please cancel {i}")["id"] for i in range(3)]
    metric = api.metric("asks to cancel")
    pairs = [(c, metric["id"], _version(db, metric)) for c in calls]
    with db.session() as s:
        s.execute(delete(CallLog).where(CallLog.id == calls[1]))
    job_id = _job(db, api.project_id)
    fake = FakeProvider(rule=_rule)
    items = _group(db, api, pairs, fake, job_id=job_id)
    assert [i.outcome for i in items] == ["evaluated", "error", "evaluated"] and items[1].result_id is None
    with db.session() as s:
        error = s.scalar(select(JobItem.error).where(JobItem.job_id == job_id, JobItem.call_log_id == calls[1]))
    assert error == f"could not evaluate: NotFound: no call log with id {calls[1]} in this project"


def test_an_engine_failure_on_one_pair_is_its_error_not_the_groups(api: Api, db: Database, monkeypatch: Any) -> None:
    import judgelab.evaluation.group as group

    agent = api.agent()
    calls = [api.call(agent, f"e{i}", f"please cancel {i}")["id"] for i in range(3)]
    metric = api.metric("asks to cancel")
    pairs = [(c, metric["id"], _version(db, metric)) for c in calls]
    real = group.evaluate

    async def breaks_on_the_second(content: Any, call: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        if call["id"] == calls[1]:
            raise RuntimeError("the engine broke")
        return await real(content, call, *args, **kwargs)

    monkeypatch.setattr(group, "evaluate", breaks_on_the_second)
    items = _group(db, api, pairs, FakeProvider(rule=_rule), job_id=_job(db, api.project_id))
    assert [i.outcome for i in items] == ["evaluated", "error", "evaluated"]
    with db.session() as s:
        stored = s.scalar(select(MetricResult.error).where(MetricResult.id == items[1].result_id))
    assert stored == "could not evaluate: RuntimeError: the engine broke"
