"""Evaluation jobs: start (with the cost guard), follow, list, cancel."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, ConfigDict, Field

from judgelab.api.calls import call_filters
from judgelab.api.deps import Ctx, CtxDep, PagingDep, paginated
from judgelab.api.responses import FastJSON
from judgelab.errors import InvalidInput, NotFound
from judgelab.jobs.service import cancel_job, get_job, job_dict, list_jobs
from judgelab.jobs.submit import metrics_on_calls, resolve_calls, submit_evaluation

router = APIRouter(tags=["evaluation jobs"])
Id = Annotated[int, Field(ge=1, le=2**31 - 1)]
JobId = Annotated[str, Path(min_length=1, max_length=64, description="the job id returned when it started")]


class EvaluateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    call_logs: list[Id] | None = Field(default=None, max_length=100_000, description="call ids; or use the filters")
    metrics: list[Id] = Field(min_length=1, max_length=100, description="metric ids")
    project_id: Id | None = None
    agent: Id | None = None
    agent_id: Id | None = None
    search: Annotated[str, Field(max_length=1000)] | None = None
    timestamp__gte: datetime | None = None
    timestamp__lte: datetime | None = None
    confirm: bool = Field(default=False, description="required above 100 calls, after reading the estimate")
    force: bool = Field(default=False, description="evaluate again even where a stored result matches (no cache)")
    batch: bool = Field(default=False, description="through the providers' batch APIs: half price, answered within "
                                                   "24 hours (the estimate shows both prices)")


class RerunIn(EvaluateIn):
    metrics: list[Id] | None = Field(  # type: ignore[assignment]
        default=None, max_length=100, description="metric ids; default: those with results on these calls"
    )


def _start(request: Request, ctx: Ctx, body: EvaluateIn, metric_ids: list[int] | None, kind: str) -> FastJSON:
    if body.project_id is not None and body.project_id != ctx.project_id:
        raise NotFound("project_id", f"no project with id {body.project_id} for this API key")
    filtering = any(v is not None for v in (body.agent, body.agent_id, body.search, body.timestamp__gte, body.timestamp__lte))
    if body.call_logs is not None and filtering:
        raise InvalidInput("call_logs", "give call_logs or filters (agent, search, timestamp__gte/lte), not both")
    if body.call_logs is None and not filtering:
        raise InvalidInput("call_logs", "name the calls (call_logs) or filter them (agent, search, timestamp__gte/lte)")
    filters = None if body.call_logs is not None else call_filters(
        ctx, body.agent, body.agent_id, None, body.search, body.timestamp__gte, body.timestamp__lte)
    if metric_ids is None:
        metric_ids = metrics_on_calls(ctx.session, resolve_calls(ctx.session, ctx.project_id, body.call_logs, filters))
    submitted = submit_evaluation(
        ctx.session, ctx.project_id, metric_ids, call_ids=body.call_logs, filters=filters, confirm=body.confirm,
        force=body.force, default_model=ctx.settings.model, created_by=ctx.key_name, kind=kind, batch=body.batch,
    )
    out = {**job_dict(ctx.session, submitted.job), "estimate": submitted.estimate.as_dict(),
           "progress_url": f"/api/v1/jobs/{submitted.job.id}/"}
    ctx.commit()
    runtime = getattr(request.app.state, "runtime", None)
    if runtime is not None:
        runtime.wake()
    return FastJSON(out, status_code=202)


@router.post("/observability/v1/call-logs/evaluate_metrics/", status_code=202,
             summary="Evaluate metrics on calls as a background job; above 100 calls send confirm: true")
def evaluate_metrics(request: Request, body: EvaluateIn, ctx: CtxDep) -> FastJSON:
    return _start(request, ctx, body, list(body.metrics), "evaluation")


@router.post("/observability/v1/call-logs/rerun_evaluation/", status_code=202,
             summary="Evaluate again (force: true bypasses the result cache)")
def rerun_evaluation(request: Request, body: RerunIn, ctx: CtxDep) -> FastJSON:
    return _start(request, ctx, body, list(body.metrics) if body.metrics else None, "rerun")


@router.get("/api/v1/jobs/", summary="This project's jobs, newest first")
def list_jobs_endpoint(request: Request, ctx: CtxDep, paging: PagingDep) -> FastJSON:
    count, jobs = list_jobs(ctx.session, ctx.project_id, offset=paging.offset, limit=paging.page_size)
    return FastJSON(paginated(request, paging, count, [job_dict(ctx.session, j) for j in jobs]))


@router.get("/api/v1/jobs/{id}/", summary="A job's status, progress (done / total / errors), cache hits, tokens and cost")
def get_job_endpoint(id: JobId, ctx: CtxDep) -> FastJSON:
    return FastJSON(job_dict(ctx.session, get_job(ctx.session, ctx.project_id, id)))


@router.post("/api/v1/jobs/{id}/cancel/", summary="Stop a job: chunks not started are skipped, finished work is kept")
def cancel_job_endpoint(id: JobId, ctx: CtxDep) -> FastJSON:
    job = cancel_job(ctx.session, ctx.project_id, id)
    out = job_dict(ctx.session, job)
    ctx.commit()
    return FastJSON(out)
