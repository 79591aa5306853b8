"""Evaluations from the browser: pick metrics and calls, read the cost estimate, confirm above
100 calls, then watch the job."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import select

from judgelab.calls.queries import CallFilters
from judgelab.db.models import Agent
from judgelab.errors import InvalidInput
from judgelab.evaluation.estimate import CONFIRM_ABOVE, estimate
from judgelab.jobs.service import get_job, job_dict, list_jobs
from judgelab.jobs.submit import submit_evaluation
from judgelab.metrics.service import list_metrics
from judgelab.web.calls import _when
from judgelab.web.common import Web, form, render, see_other

router = APIRouter(include_in_schema=False)
RUNNING = ("queued", "starting", "running")


def _choices(ctx: Any) -> dict[str, Any]:
    _n, metrics = list_metrics(ctx.session, ctx.project_id, offset=0, limit=500)
    agents = ctx.session.execute(select(Agent.id, Agent.name).where(Agent.project_id == ctx.project_id)
                                 .order_by(Agent.name)).all()
    return {"metrics": metrics, "agents": agents, "confirm_above": CONFIRM_ABOVE}


@router.get("/evaluate")
def evaluate_page(request: Request, ctx: Web) -> Response:
    return render(request, "evaluate.html", ctx, chosen={}, **_choices(ctx))


@router.post("/evaluate")
def evaluate(request: Request, ctx: Web) -> Response:
    data = form(request)
    metric_ids = [int(m) for m in data.getlist("metric") if str(m).isdigit()]
    agent = str(data.get("agent", ""))
    filters = CallFilters(agent_id=int(agent) if agent.isdigit() else None,
                          search=str(data.get("search", "")).strip() or None,
                          timestamp_gte=_when(str(data.get("since", "")), "since"),
                          timestamp_lte=_when(str(data.get("until", "")), "until"))
    chosen = {"metric": metric_ids, "agent": agent, "search": data.get("search", ""), "since": data.get("since", ""),
              "until": data.get("until", "")}
    if not metric_ids:
        raise InvalidInput("metric", "choose at least one metric")
    if data.get("action") != "start":
        guess = estimate(ctx.session, ctx.project_id, metric_ids, ctx.settings.model, filters=filters)
        return render(request, "evaluate.html", ctx, chosen=chosen, estimate=guess.as_dict(), **_choices(ctx))
    submitted = submit_evaluation(ctx.session, ctx.project_id, metric_ids, call_ids=None, filters=filters,
                                  confirm=data.get("confirm") == "on", force=False, default_model=ctx.settings.model,
                                  created_by=ctx.reviewer)
    ctx.commit()
    runtime = getattr(request.app.state, "runtime", None)
    if runtime is not None:
        runtime.wake()
    return see_other(f"/jobs/{submitted.job.id}")


@router.get("/jobs")
def jobs_page(request: Request, ctx: Web) -> Response:
    _n, jobs = list_jobs(ctx.session, ctx.project_id, offset=0, limit=50)
    return render(request, "jobs.html", ctx, jobs=[job_dict(ctx.session, j) for j in jobs])


@router.get("/jobs/{job_id}")
def job_page(request: Request, job_id: str, ctx: Web) -> Response:
    job = job_dict(ctx.session, get_job(ctx.session, ctx.project_id, job_id))
    name = "_job_status.html" if request.headers.get("hx-request") == "true" else "job.html"
    return render(request, name, ctx, job=job, running=job["status"] in RUNNING)
