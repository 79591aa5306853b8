"""Job rows: creating evaluation jobs, their progress, budgets, claiming queued jobs.

The API and the CLI only write a `queued` row; a runtime (the server's, or a `judgelab worker`)
claims it and runs it as a DBOS workflow. So submitting a job needs nothing but the database,
and a job submitted while no worker runs simply waits.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, time
from typing import Any

from sqlalchemy import case, func, select, update
from sqlalchemy.orm import Session

from judgelab.db.models import Job, JobItem, MetricResult, Project, ProviderBatch
from judgelab.db.types import utcnow
from judgelab.errors import Conflict, InvalidInput, NotFound
from judgelab.evaluation.service import plan_stages
from judgelab.judges.registry import endpoints

ACTIVE = ("queued", "starting", "running")
FINAL = ("completed", "failed", "stopped", "cancelled")


def create_evaluation_job(
    session: Session,
    project_id: int,
    call_ids: list[int],
    metric_ids: list[int],
    *,
    force: bool,
    default_model: str | None,
    created_by: str = "",
    kind: str = "evaluation",
    runner: str | None = None,
    batch: bool = False,
) -> Job:
    """Pin the metric versions current now: a metric edited mid-job does not change the job. The
    job records the endpoints its providers were configured with here (`endpoints()`), and with
    `runner` it is reserved for that executor (`judgelab eval` runs its own job)."""
    stages = plan_stages(session, project_id, metric_ids)
    calls = list(dict.fromkeys(call_ids))
    if not calls:
        raise InvalidInput("call_logs", "no calls to evaluate: the list or the filters matched none")
    job = Job(
        id=str(uuid.uuid4()),
        project_id=project_id,
        kind=kind,
        status="queued",
        params={
            "call_ids": calls,
            "stages": stages,
            "force": force,
            "model": default_model,
            "endpoints": endpoints(),
            **({"runner": runner} if runner else {}),
            # Through the providers' batch APIs: half price, answers within their 24-hour window.
            **({"batch": True} if batch else {}),
        },
        total=len(calls) * sum(len(s) for s in stages),
        created_by=created_by,
    )
    session.add(job)
    session.flush()
    return job


def get_job(session: Session, project_id: int, job_id: str) -> Job:
    job = session.get(Job, job_id)
    if job is None or job.project_id != project_id:
        raise NotFound("id", f"no job with id {job_id!r} in this project")
    return job


def progress(session: Session, job_id: str) -> dict[str, Any]:
    row = session.execute(
        select(
            func.count(),
            func.coalesce(func.sum(case((JobItem.outcome == "error", 1), else_=0)), 0),
            func.coalesce(func.sum(case((JobItem.outcome == "cached", 1), else_=0)), 0),
            func.coalesce(func.sum(JobItem.llm_calls), 0),
            func.coalesce(func.sum(JobItem.input_tokens), 0),
            func.coalesce(func.sum(JobItem.output_tokens), 0),
            func.coalesce(func.sum(JobItem.cost_usd), 0.0),
        ).where(JobItem.job_id == job_id)
    ).one()
    done, errors, hits, llm_calls, tokens_in, tokens_out, cost = row
    return {"done": int(done), "errors": int(errors), "cache_hits": int(hits), "llm_calls": int(llm_calls),
            "input_tokens": int(tokens_in), "output_tokens": int(tokens_out), "cost_usd": round(float(cost), 6)}


def _priced(model: str | None) -> bool:
    from judgelab.judges.pricing import cost_usd, price_table

    return model is not None and cost_usd(model, 1, 1, price_table()) is not None


def _known(p: dict[str, Any], params: dict[str, Any]) -> bool:
    """Whether the job's cost is known: something priced was spent, nothing was, or its model has a price."""
    return bool(p["cost_usd"]) or not p["llm_calls"] or _priced(params.get("model"))


def job_dict(session: Session, job: Job) -> dict[str, Any]:
    p = progress(session, job.id)
    params = job.params or {}
    known = _known(p, params)
    return {
        "id": job.id,
        "job_id": job.id,
        "kind": job.kind,
        "status": job.status,
        "message": job.message,
        "progress": {
            "done": p["done"],
            "total": job.total,
            "errors": p["errors"],
            "cache_hits": p["cache_hits"],
            "percent": round(100.0 * p["done"] / job.total, 1) if job.total else 100.0,
        },
        "llm_calls": p["llm_calls"],
        "input_tokens": p["input_tokens"],
        "output_tokens": p["output_tokens"],
        # None when the judge model has no known price: unknown is not free.
        "cost_usd": p["cost_usd"] if known else None,
        "cost_known": known,
        "calls": len(params.get("call_ids", [])),
        "metrics": [m for stage in params.get("stages", []) for m, _v in stage],
        "metric_versions": [v for stage in params.get("stages", []) for _m, v in stage],
        "force": bool(params.get("force")),
        "batch": bool(params.get("batch")),
        "model": params.get("model"),
        # Where its requests go (by base URL, never the key), and the executor it is reserved for.
        "endpoints": params.get("endpoints"),
        "runner": params.get("runner"),
        # A batch job's provider batches: where its requests wait, and whether each has ended.
        "batches": _batches(session, job.id) if params.get("batch") else None,
        "created_by": job.created_by,
        "executor_id": job.executor_id,
        "created_at": job.created_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
    }


def _batches(session: Session, job_id: str) -> list[dict[str, Any]]:
    rows = session.scalars(select(ProviderBatch).where(ProviderBatch.job_id == job_id).order_by(ProviderBatch.id)).all()
    return [{"provider": b.provider, "batch_id": b.batch_id, "requests": len(b.request_keys),
             "status": b.status or "in_progress", "created_at": b.created_at, "ended_at": b.ended_at} for b in rows]


def list_jobs(session: Session, project_id: int, *, offset: int, limit: int) -> tuple[int, list[Job]]:
    count = session.scalar(select(func.count()).select_from(Job).where(Job.project_id == project_id)) or 0
    jobs = session.scalars(
        select(Job).where(Job.project_id == project_id).order_by(Job.created_at.desc(), Job.id).offset(offset).limit(limit)
    ).all()
    return count, list(jobs)


def cancel_job(session: Session, project_id: int, job_id: str) -> Job:
    """Chunks not yet started are skipped; evaluations in flight finish and are kept."""
    job = get_job(session, project_id, job_id)
    if job.status in FINAL:
        raise Conflict("id", f"job {job.id} has already ended ({job.status})")
    job.status = "cancelled"
    job.message = "cancelled by request; finished evaluations are kept"
    job.finished_at = utcnow()
    return job


def spent_today(session: Session, project_id: int, now: datetime | None = None) -> float:
    midnight = datetime.combine((now or utcnow()).date(), time(0), tzinfo=UTC)
    total = session.scalar(
        select(func.coalesce(func.sum(MetricResult.cost_usd), 0.0))
        .where(MetricResult.project_id == project_id, MetricResult.created_at >= midnight)
    )
    return float(total or 0.0)


def budget_for(session: Session, project_id: int, default: float | None) -> float | None:
    project = session.get(Project, project_id)
    if project is not None and project.daily_budget_usd is not None:
        return project.daily_budget_usd
    return default


def over_budget(session: Session, project_id: int, default: float | None) -> str | None:
    """A message when today's spend has reached the project's daily budget, else None."""
    budget = budget_for(session, project_id, default)
    if budget is None:
        return None
    spent = spent_today(session, project_id)
    if spent >= budget:
        return (f"stopped: the project's daily budget of ${budget:.2f} is spent (${spent:.4f} today, UTC); "
                "finished evaluations are kept. Raise daily_budget_usd or run the job again tomorrow "
                "(unchanged evaluations will come from the cache)")
    return None


def runnable_here(params: dict[str, Any], executor_id: str, here: dict[str, str]) -> bool:
    """A job reserved for another executor, or submitted for another provider endpoint, is not ours."""
    if params.get("runner") not in (None, executor_id):
        return False
    wanted = params.get("endpoints") or {}
    return all(here.get(provider) == url for provider, url in wanted.items() if provider in here)


def claim_queued(session: Session, executor_id: str, limit: int = 20, here: dict[str, str] | None = None) -> list[str]:
    """Atomically move queued jobs to `starting` for this executor; only one claimant wins each."""
    here = endpoints() if here is None else here
    rows = session.execute(select(Job.id, Job.params).where(Job.status == "queued").order_by(Job.created_at)
                           .limit(limit * 5)).all()
    ids = [job_id for job_id, params in rows if runnable_here(params or {}, executor_id, here)][:limit]
    won = []
    for job_id in ids:
        result = session.execute(
            update(Job).where(Job.id == job_id, Job.status == "queued").values(status="starting", executor_id=executor_id)
        )
        if result.rowcount == 1:  # type: ignore[attr-defined]
            won.append(job_id)
    return won


def starting_for(session: Session, executor_id: str) -> list[str]:
    """Jobs this executor claimed but may not have handed to DBOS before it stopped."""
    return list(session.scalars(select(Job.id).where(Job.status == "starting", Job.executor_id == executor_id)).all())
