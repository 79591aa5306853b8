"""Evaluations from the browser: pick metrics and calls, read the cost estimate, confirm above
100 calls, then watch the job."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import select

from judgelab.calls.queries import CallFilters
from judgelab.db.models import Agent, JobItem, LabsRun, Metric
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


def _picked(values: list[Any]) -> list[int]:
    """Call ids ticked in the calls list (anything that is not an id is a 400 naming the field)."""
    out = []
    for v in values:
        if not str(v).isdigit() or not 1 <= int(v) <= 2**31 - 1:
            raise InvalidInput("call", f"expected call ids, got {v!r}")
        out.append(int(v))
    return list(dict.fromkeys(out))


@router.get("/evaluate")
def evaluate_page(request: Request, ctx: Web) -> Response:
    calls = _picked(request.query_params.getlist("call"))
    return render(request, "evaluate.html", ctx, chosen={"calls": calls}, **_choices(ctx))


@router.post("/evaluate")
def evaluate(request: Request, ctx: Web) -> Response:
    data = form(request)
    metric_ids = [int(m) for m in data.getlist("metric") if str(m).isdigit()]
    agent = str(data.get("agent", ""))
    filters = CallFilters(agent_id=int(agent) if agent.isdigit() else None,
                          search=str(data.get("search", "")).strip() or None,
                          timestamp_gte=_when(str(data.get("since", "")), "since"),
                          timestamp_lte=_when(str(data.get("until", "")), "until"))
    calls = _picked(data.getlist("call"))
    chosen = {"metric": metric_ids, "agent": agent, "search": data.get("search", ""), "since": data.get("since", ""),
              "until": data.get("until", ""), "calls": calls}
    if not metric_ids:
        raise InvalidInput("metric", "choose at least one metric")
    if data.get("action") != "start":
        guess = estimate(ctx.session, ctx.project_id, metric_ids, ctx.settings.model, call_ids=calls or None,
                         filters=None if calls else filters)
        return render(request, "evaluate.html", ctx, chosen=chosen, estimate=guess.as_dict(), **_choices(ctx))
    submitted = submit_evaluation(ctx.session, ctx.project_id, metric_ids, call_ids=calls or None,
                                  filters=None if calls else filters,
                                  confirm=data.get("confirm") == "on", force=False, default_model=ctx.settings.model,
                                  created_by=ctx.reviewer, batch=data.get("batch") == "on")
    ctx.commit()
    runtime = getattr(request.app.state, "runtime", None)
    if runtime is not None:
        runtime.wake()
    return see_other(f"/jobs/{submitted.job.id}")


_RUN_PAGES = {"labs": "/labs/{id}", "validation": "/validations/{id}", "to_code": "/conversions/{id}"}


@router.get("/jobs")
def jobs_page(request: Request, ctx: Web) -> Response:
    """Evaluation jobs and labs, validation and conversion runs, newest first, with their metrics."""
    _n, jobs = list_jobs(ctx.session, ctx.project_id, offset=0, limit=50)
    names = dict(ctx.session.execute(select(Metric.id, Metric.name).where(Metric.project_id == ctx.project_id)).all())
    rows: list[dict[str, Any]] = []
    for j in jobs:
        d = job_dict(ctx.session, j)
        first = _failures(ctx, j.id, 1)
        rows.append({"created_at": j.created_at, "kind": "evaluation", "status": d["status"], "link": f"/jobs/{j.id}",
                     "metrics": [names.get(m, f"#{m}") for m in d["metrics"]], "done": d["progress"]["done"],
                     "total": d["progress"]["total"], "calls": d["llm_calls"], "cost": d["cost_usd"],
                     "errors": d["progress"]["errors"], "first_error": first[0] if first else None})
    runs = ctx.session.scalars(select(LabsRun).where(LabsRun.project_id == ctx.project_id)
                               .order_by(LabsRun.created_at.desc()).limit(50)).all()
    for r in runs:
        kind = (r.params or {}).get("kind", "labs")
        p = r.progress or {}
        rows.append({"created_at": r.created_at, "kind": kind.replace("_", " "), "status": r.status,
                     "link": _RUN_PAGES.get(kind, "/labs/{id}").format(id=r.id), "metrics": [names.get(r.metric_id, "?")],
                     "done": None, "total": None, "calls": p.get("judge_calls"), "cost": p.get("cost_usd"), "errors": 0,
                     "first_error": None, "message": r.message})
    rows.sort(key=lambda row: row["created_at"], reverse=True)
    return render(request, "jobs.html", ctx, rows=rows[:80])


def _failures(ctx: Any, job_id: str, limit: int) -> list[dict[str, Any]]:
    items = ctx.session.execute(select(JobItem.call_log_id, JobItem.metric_id, JobItem.error).where(
        JobItem.job_id == job_id, JobItem.outcome == "error").limit(limit)).all()
    return [{"call_log_id": c, "metric_id": m, "error": e or "(no message)"} for c, m, e in items]


@router.get("/jobs/{job_id}")
def job_page(request: Request, job_id: str, ctx: Web) -> Response:
    job = job_dict(ctx.session, get_job(ctx.session, ctx.project_id, job_id))
    name = "_job_status.html" if request.headers.get("hx-request") == "true" else "job.html"
    return render(request, name, ctx, job=job, running=job["status"] in RUNNING, failures=_failures(ctx, job_id, 50))
