"""Metrics: CRUD, version history, revert, and the feedback left on them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from judgelab.api.deps import CtxDep, PagingDep, PathId, paginated
from judgelab.api.responses import FastJSON
from judgelab.feedback.votes import feedback_progress, feedback_to_dict, list_feedback
from judgelab.metrics.schemas import MetricCreate, MetricPatch, MetricRevert
from judgelab.metrics.service import (
    create_metric,
    delete_metric,
    get_metric,
    list_metrics,
    metric_to_dict,
    revert_metric,
    update_metric,
    version_to_dict,
)
from judgelab.projects.service import check_model

router = APIRouter(prefix="/test_framework/v1/metrics", tags=["metrics"])


@router.post("/", status_code=201, summary="Create a metric (version 1)")
def create(body: MetricCreate, ctx: CtxDep) -> FastJSON:
    check_model(ctx.session, ctx.project_id, body.model, admin=ctx.is_admin)
    metric = create_metric(ctx.session, ctx.project_id, body)
    out = metric_to_dict(metric)
    ctx.commit()
    return FastJSON(out, status_code=201)


@router.get("/", summary="List metrics")
def list_(
    request: Request,
    ctx: CtxDep,
    paging: PagingDep,
    agent: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
) -> FastJSON:
    count, rows = list_metrics(ctx.session, ctx.project_id, agent_id=agent, offset=paging.offset, limit=paging.page_size)
    return FastJSON(paginated(request, paging, count, [metric_to_dict(m) for m in rows]))


@router.get("/{id}/", summary="One metric at its current version")
def get(id: PathId, ctx: CtxDep) -> FastJSON:
    return FastJSON(metric_to_dict(get_metric(ctx.session, ctx.project_id, id)))


@router.patch("/{id}/", summary="Edit a metric; a change to its judged content makes a new version")
def patch(id: PathId, body: MetricPatch, ctx: CtxDep) -> FastJSON:
    check_model(ctx.session, ctx.project_id, body.model, admin=ctx.is_admin)
    metric, changed = update_metric(ctx.session, ctx.project_id, id, body)
    out = metric_to_dict(metric)
    ctx.commit()
    return FastJSON({**out, "new_version": changed})


@router.delete("/{id}/", status_code=204, summary="Delete a metric (its results and feedback are kept)")
def delete(id: PathId, ctx: CtxDep) -> Response:
    delete_metric(ctx.session, ctx.project_id, id)
    ctx.commit()
    return Response(status_code=204)


@router.get("/{id}/versions/", summary="Every version of a metric, oldest first")
def versions(id: PathId, ctx: CtxDep) -> FastJSON:
    metric = get_metric(ctx.session, ctx.project_id, id)
    results = [version_to_dict(v) for v in metric.versions]
    return FastJSON({"count": len(results), "current_version": metric.current_version, "results": results})


@router.post("/{id}/revert/", summary="Make a new version with the content of an older one")
def revert(id: PathId, body: MetricRevert, ctx: CtxDep) -> FastJSON:
    metric = revert_metric(ctx.session, ctx.project_id, id, body.version)
    out = metric_to_dict(metric)
    ctx.commit()
    return FastJSON(out)


@router.get("/{id}/feedback/", summary="Feedback on a metric, with progress toward a labs run")
def feedback(
    request: Request,
    id: PathId,
    ctx: CtxDep,
    paging: PagingDep,
    include_history: Annotated[bool, Query(description="also list votes that were later replaced")] = False,
) -> FastJSON:
    metric, count, rows = list_feedback(
        ctx.session, ctx.project_id, id, include_history=include_history, offset=paging.offset, limit=paging.page_size
    )
    eval_type = metric.current.eval_type
    return FastJSON(paginated(
        request, paging, count, [feedback_to_dict(f, eval_type) for f in rows],
        metric_id=metric.id, progress=feedback_progress(ctx.session, metric),
    ))
