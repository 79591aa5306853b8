"""Convert-to-code in the browser: start the conversion run, read what it measured (the saving with
its interval, both versions' agreement, the exact test on the difference, failures), and create the
code metric only when a person decides to."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from judgelab.labs.service import get_run, run_dict
from judgelab.labs.to_code import start_conversion
from judgelab.metrics.schemas import MetricCreate
from judgelab.metrics.service import create_metric, get_metric
from judgelab.web.common import Web, render, see_other
from judgelab.web.labs import FINISHED

router = APIRouter(include_in_schema=False)


@router.post("/metrics/{metric_id}/to_code")
def convert(request: Request, metric_id: int, ctx: Web) -> Response:
    run = start_conversion(ctx.session, ctx.project_id, metric_id, max_judge_calls=5000)
    ctx.commit()
    runtime = getattr(request.app.state, "runtime", None)
    if runtime is not None:
        runtime.wake()
    return see_other(f"/conversions/{run.id}")


@router.get("/conversions/{run_id}")
def conversion_page(request: Request, run_id: str, ctx: Web) -> Response:
    run = get_run(ctx.session, ctx.project_id, run_id, field="conversion_id")
    out = run_dict(run)
    metric = get_metric(ctx.session, ctx.project_id, run.metric_id)
    finished = run.status in FINISHED
    if request.headers.get("hx-request") == "true" and finished:
        return Response(status_code=204, headers={"HX-Refresh": "true"})
    return render(request, "conversion.html", ctx, run=out, metric=metric, finished=finished)


@router.post("/conversions/{run_id}/create")
def create_code_metric(run_id: str, ctx: Web) -> Response:
    run = run_dict(get_run(ctx.session, ctx.project_id, run_id, field="conversion_id"))
    body = run.get("metric_body")
    if run["status"] != "completed" or not body:
        from judgelab.errors import Conflict

        raise Conflict("conversion_id", "only a completed conversion can be created as a metric")
    metric = create_metric(ctx.session, ctx.project_id, MetricCreate(**body))
    ctx.commit()
    return see_other(f"/metrics/{metric.id}")
