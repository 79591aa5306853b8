"""Metrics: the list with agreement and diagnosis, and a metric's page (versions, diff, revert,
feedback, confusion matrix, agreement per version, corrected pass rate, its labs runs)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import select

from judgelab.db.models import LabsRun
from judgelab.feedback.votes import feedback_progress, feedback_to_dict, list_feedback
from judgelab.labs.drift import agreement_over_time, label_balance
from judgelab.labs.misalignment import metric_report, misalignment
from judgelab.labs.pass_rate import pass_rate
from judgelab.labs.service import run_dict, start_run
from judgelab.labs.validation import start_validation
from judgelab.labs.versions import agreement_by_version
from judgelab.metrics.service import content_of, get_metric, list_metrics, revert_metric
from judgelab.web.common import Web, form, form_int, render, see_other
from judgelab.web.views import balance_bars, drift_chart, kappa_chart, side_by_side

router = APIRouter(include_in_schema=False)


@router.get("/metrics")
def metrics_page(request: Request, ctx: Web) -> Response:
    reports = {r.metric_id: r.as_dict() for r in misalignment(ctx.session, ctx.project_id)}
    _count, metrics = list_metrics(ctx.session, ctx.project_id, offset=0, limit=500)
    order = {mid: i for i, mid in enumerate(reports)}
    metrics.sort(key=lambda m: order.get(m.id, len(order)))
    rows = [{"metric": m, "report": reports.get(m.id)} for m in metrics]
    return render(request, "metrics.html", ctx, rows=rows)


def _version_text(v: Any) -> str:
    c = content_of(v).as_dict()
    lines = [c.get("description") or ""]
    for key in ("eval_type", "enum_values", "evaluation_trigger", "evaluation_trigger_prompt", "custom_code", "model"):
        if c.get(key) not in (None, "", []):
            lines.append(f"[{key}] {c[key]}")
    return "\n".join(lines)


@router.get("/metrics/{metric_id}")
def metric_page(request: Request, metric_id: int, ctx: Web, a: int | None = None, b: int | None = None) -> Response:
    metric = get_metric(ctx.session, ctx.project_id, metric_id)
    versions = {v.version: v for v in metric.versions}
    b = b if b in versions else metric.current_version
    a = a if a in versions else max(1, b - 1)
    report = metric_report(ctx.session, metric).as_dict()
    by_version = agreement_by_version(ctx.session, metric)
    _m, _n, feedback = list_feedback(ctx.session, ctx.project_id, metric.id, include_history=False, offset=0, limit=100)
    weeks, balance = agreement_over_time(ctx.session, metric), label_balance(ctx.session, metric)
    runs = ctx.session.scalars(select(LabsRun).where(LabsRun.metric_id == metric.id)
                               .order_by(LabsRun.created_at.desc()).limit(20)).all()
    return render(
        request, "metric.html", ctx, metric=metric, current=metric.current, versions=sorted(versions.values(), key=lambda v: v.version),
        a=a, b=b, diff=side_by_side(_version_text(versions[a]), _version_text(versions[b])),
        report=report, chart=kappa_chart(by_version), by_version=by_version,
        current_agreement=max((v for v in by_version if v["version"] == metric.current_version and v["agreement"]),
                              key=lambda v: v["compared"], default={"agreement": None})["agreement"], progress=feedback_progress(ctx.session, metric),
        feedback=[feedback_to_dict(f, metric.current.eval_type) for f in feedback], pass_rate=pass_rate(ctx.session, metric, report["agreement"]),
        runs=[run_dict(r) | {"kind": (r.params or {}).get("kind", "labs")} for r in runs],
        drift=drift_chart(weeks), weeks=weeks, balance=balance, bars=balance_bars(balance))


@router.post("/metrics/{metric_id}/revert")
def revert(request: Request, metric_id: int, ctx: Web) -> Response:
    revert_metric(ctx.session, ctx.project_id, metric_id, form_int(request, "version", low=1))
    ctx.commit()
    return see_other(f"/metrics/{metric_id}")


@router.post("/metrics/{metric_id}/labs")
def start_labs(request: Request, metric_id: int, ctx: Web) -> Response:
    run = start_run(ctx.session, ctx.project_id, metric_id, test_set_ids=None, metric_type="llm_judge",
                    skip_evaluation=form(request).get("skip_evaluation") == "on", simplified_prompt=None,
                    max_judge_calls=form_int(request, "max_judge_calls", 100, low=10, high=5000), seed=None)
    ctx.commit()
    _wake(request)
    return see_other(f"/labs/{run.id}")


@router.post("/metrics/{metric_id}/validate")
def validate(request: Request, metric_id: int, ctx: Web) -> Response:
    data = form(request)
    run = start_validation(ctx.session, ctx.project_id, metric_id, description=str(data.get("description") or "") or None,
                           sample=form_int(request, "sample", 20, high=500), confirm=data.get("confirm") == "on",
                           max_judge_calls=5000, default_model=ctx.settings.model)
    ctx.commit()
    _wake(request)
    return see_other(f"/validations/{run.id}")


def _wake(request: Request) -> None:
    runtime = getattr(request.app.state, "runtime", None)
    if runtime is not None:
        runtime.wake()
