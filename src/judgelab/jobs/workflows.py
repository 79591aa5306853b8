"""The DBOS workflows behind evaluation jobs.

A job is one parent workflow (id = the job id) that splits the calls into chunks and enqueues one
child workflow per chunk on the evaluation queue, so any worker sharing the database may run
them. In a chunk, each (call, metric) evaluation is one DBOS step: a worker killed mid-job is
resumed from its last checkpoint and never repeats a finished LLM call. Steps also record a job
item in our own database in the same transaction as the result, and return early when it exists,
so even a step DBOS had not yet checkpointed when the process died stores nothing twice.

Step ids must be assigned in the same order on replay: every stage creates its step coroutines
in one list comprehension (call order, then metric order) before awaiting any of them.
"""

from __future__ import annotations

import asyncio
from typing import Any

from dbos import DBOS, SetWorkflowID
from sqlalchemy import func, select

from judgelab.db.models import Job, JobItem
from judgelab.db.types import utcnow
from judgelab.evaluation.service import evaluate_one, record_failure
from judgelab.jobs import state
from judgelab.jobs.service import over_budget

JOB_QUEUE = "judgelab-jobs"
EVAL_QUEUE = "judgelab-evaluations"
POLL = 0.1  # seconds between checks of a child workflow's end


def _begin(job_id: str) -> dict[str, Any]:
    rt = state.current()
    with rt.db.session() as session:
        job = session.get(Job, job_id)
        if job is None:
            return {"chunks": [], "stop": "the job row is gone"}
        if job.status == "cancelled":
            return {"chunks": [], "stop": "cancelled"}
        job.status, job.started_at, job.executor_id = "running", job.started_at or utcnow(), rt.executor_id
        calls: list[int] = job.params["call_ids"]
        size = rt.settings.job_chunk_size
        return {"chunks": [calls[i:i + size] for i in range(0, len(calls), size)], "stop": None}


def _chunk_gate(job_id: str) -> dict[str, Any]:
    """Whether a chunk may start: not cancelled, budget left. Its plan, pinned at submission."""
    rt = state.current()
    with rt.db.session() as session:
        job = session.get(Job, job_id)
        if job is None or job.status == "cancelled":
            return {"stop": "cancelled"}
        message = over_budget(session, job.project_id, rt.settings.daily_budget_usd)
        if message:
            return {"stop": message}
        return {"stop": None, "project_id": job.project_id, "stages": job.params["stages"],
                "force": bool(job.params.get("force")), "model": job.params.get("model")}


def _finish(job_id: str, outcomes: list[str]) -> str:
    with state.current().db.session() as session:
        job = session.get(Job, job_id)
        if job is None:
            return "gone"
        if job.status != "cancelled":
            budget = next((o for o in outcomes if o.startswith("stopped")), None)
            failed = next((o for o in outcomes if o.startswith("failed")), None)
            if failed:
                job.status, job.message = "failed", failed
            elif budget:
                job.status, job.message = "stopped", budget
            else:
                job.status, job.message = "completed", None
            done = session.scalar(select(func.count()).select_from(JobItem).where(JobItem.job_id == job_id)) or 0
            if job.status == "completed" and done < job.total:
                # Never "completed" with a result missing: say how many and fail.
                job.status, job.message = "failed", f"{job.total - done} of {job.total} evaluations have no result"
        job.finished_at = utcnow()
        return job.status


@DBOS.step(name="judgelab.job_begin")
async def job_begin(job_id: str) -> dict[str, Any]:
    return await asyncio.to_thread(_begin, job_id)


@DBOS.step(name="judgelab.chunk_gate")
async def chunk_gate(job_id: str) -> dict[str, Any]:
    return await asyncio.to_thread(_chunk_gate, job_id)


@DBOS.step(name="judgelab.job_finish")
async def job_finish(job_id: str, outcomes: list[str]) -> str:
    return await asyncio.to_thread(_finish, job_id, outcomes)


@DBOS.step(name="judgelab.evaluate")
async def evaluate_step(job_id: str, project_id: int, call_id: int, metric_id: int, version_id: int, force: bool,
                        model: str | None) -> str:
    rt = state.current()
    try:
        item = await evaluate_one(rt.db, project_id, call_id, metric_id, rt.judges().client_for, model,
                                  version_id=version_id, force=force, job_id=job_id)
    except Exception as exc:  # noqa: BLE001 - a vanished call or metric must not fail the chunk...
        message = f"could not evaluate: {type(exc).__name__}: {str(exc)[:300]}"
        # ...nor leave a silent gap: it becomes an explicit error, counted in the job's errors.
        item = await asyncio.to_thread(record_failure, rt.db, project_id, job_id, call_id, metric_id, version_id, message)
    return item.outcome


@DBOS.workflow(name="judgelab.evaluation_chunk")
async def evaluation_chunk(job_id: str, call_ids: list[int]) -> str:
    gate = await chunk_gate(job_id)
    if gate["stop"]:
        return str(gate["stop"])
    for stage in gate["stages"]:
        steps = [evaluate_step(job_id, gate["project_id"], c, m, v, gate["force"], gate["model"])
                 for c in call_ids for m, v in stage]
        await asyncio.gather(*steps)
    return "done"


@DBOS.workflow(name="judgelab.evaluation_job")
async def evaluation_job(job_id: str) -> str:
    plan = await job_begin(job_id)
    queue = await DBOS.retrieve_queue_async(EVAL_QUEUE)
    assert queue is not None, "the evaluation queue is registered at launch"
    handles = []
    for i, chunk in enumerate(plan["chunks"]):
        with SetWorkflowID(f"{job_id}:{i}"):
            handles.append(await queue.enqueue_async(evaluation_chunk, job_id, chunk))
    outcomes: list[str] = []
    for handle in handles:
        try:
            outcomes.append(await handle.get_result(polling_interval_sec=POLL))
        except Exception as exc:  # noqa: BLE001 - one broken chunk fails the job, not the worker
            outcomes.append(f"failed: chunk {handle.get_workflow_id()}: {type(exc).__name__}: {str(exc)[:300]}")
    return await job_finish(job_id, outcomes)
