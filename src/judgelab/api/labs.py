"""The metric lab's reads: which metrics disagree with people, and what to review next."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from judgelab.api.deps import CtxDep, PathId
from judgelab.api.responses import FastJSON
from judgelab.labs.misalignment import misalignment
from judgelab.labs.pass_rate import pass_rate
from judgelab.labs.review_queue import review_queue
from judgelab.metrics.service import get_metric

router = APIRouter(tags=["labs"])


@router.get("/api/v1/metrics/misalignment/",
            summary="Metrics worst first: disagreement with intervals, error kinds, agreement, and a diagnosis")
def misalignment_endpoint(ctx: CtxDep) -> FastJSON:
    reports = misalignment(ctx.session, ctx.project_id)
    return FastJSON({"count": len(reports), "results": [r.as_dict() for r in reports]})


@router.get("/api/v1/metrics/{id}/review_queue/",
            summary="Unreviewed results most likely to be wrong, with the signals that say so")
def review_queue_endpoint(
    id: PathId, ctx: CtxDep, limit: Annotated[int, Query(ge=1, le=200, description="at most this many")] = 50,
) -> FastJSON:
    metric = get_metric(ctx.session, ctx.project_id, id)
    items = review_queue(ctx.session, metric, limit=limit)
    return FastJSON({"metric_id": metric.id, "count": len(items), "results": items})


@router.get("/api/v1/metrics/{id}/pass_rate/",
            summary="The current version's pass rate, raw and corrected by the judge's TPR / TNR (Rogan-Gladen)")
def pass_rate_endpoint(id: PathId, ctx: CtxDep) -> FastJSON:
    return FastJSON(pass_rate(ctx.session, get_metric(ctx.session, ctx.project_id, id)))
