"""The DBOS workflows behind evaluation jobs.

A job is one parent workflow (id = the job id) that splits the calls into chunks and enqueues one
child workflow per chunk on the evaluation queue, so any worker sharing the database may run
them. A chunk checkpoints once per stage (one DBOS step), not once per evaluation: the job item
written in the same transaction as each result is the idempotency record, so a worker killed
mid-chunk is resumed from its last checkpoint, skips every evaluation that has a job item, and
pays again only for those that were in flight or waiting to be written (`evaluation/group.py`).
"""

from __future__ import annotations

import asyncio
from typing import Any

from dbos import DBOS, SetWorkflowID
from sqlalchemy import func, select

from judgelab.db.models import Job, JobItem
from judgelab.db.types import utcnow
from judgelab.evaluation.group import evaluate_group
from judgelab.jobs import state
from judgelab.jobs.batches import JobBatches
from judgelab.jobs.service import over_budget
from judgelab.judges.client import JudgeClient

JOB_QUEUE = "judgelab-jobs"
EVAL_QUEUE = "judgelab-evaluations"
POLL = 0.05  # seconds between checks of a child workflow's end


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
        # A batch job's chunks are large: each becomes one provider batch (or a few), not hundreds.
        size = rt.settings.batch_chunk_size if job.params.get("batch") else rt.settings.job_chunk_size
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
                "force": bool(job.params.get("force")), "model": job.params.get("model"),
                "batch": bool(job.params.get("batch"))}


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


@DBOS.step(name="judgelab.evaluate_group", retries_allowed=True, max_attempts=3)
async def evaluate_group_step(job_id: str, project_id: int, call_ids: list[int], stage: list[list[int]], force: bool,
                              model: str | None, batch: bool = False) -> dict[str, int]:
    """One stage of one chunk: its evaluations run concurrently and their results are written in
    groups. A retry, or a replay after a crash, skips every evaluation that has a job item. In a
    batch job every request waits in a provider batch; the job's batches are in the database, so
    a replay polls the batch it had submitted rather than paying for it again."""
    rt = state.current()
    judges = rt.judges()
    if batch:
        store = JobBatches(rt.db, job_id)

        def client_for(provider: str) -> JudgeClient:
            return judges.batch_client_for(provider, job_id, store)
    else:
        client_for = judges.client_for
    items = await evaluate_group(rt.db, project_id, [(c, m, v) for c in call_ids for m, v in stage],
                                 client_for, model, force=force, job_id=job_id)
    counts: dict[str, int] = {}
    for item in items:
        counts[item.outcome] = counts.get(item.outcome, 0) + 1
    return counts


@DBOS.workflow(name="judgelab.evaluation_chunk")
async def evaluation_chunk(job_id: str, call_ids: list[int]) -> str:
    gate = await chunk_gate(job_id)
    if gate["stop"]:
        return str(gate["stop"])
    for stage in gate["stages"]:  # code metrics run after the metrics they read
        await evaluate_group_step(job_id, gate["project_id"], call_ids, stage, gate["force"], gate["model"],
                                  gate.get("batch", False))
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
