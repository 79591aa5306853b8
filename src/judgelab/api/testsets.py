"""Test sets made from call logs: the labelled data labs optimises and validates against."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from judgelab.api.deps import CtxDep, PagingDep, PathId, paginated
from judgelab.api.responses import FastJSON
from judgelab.feedback.testsets import (
    TestSetFromCallIn,
    create_from_call_log,
    get_test_set,
    list_test_sets,
    test_set_to_dict,
)

router = APIRouter(prefix="/test_framework/test-sets", tags=["test sets"])


@router.post("/create_from_call_log/", status_code=201, summary="Freeze a call with per-metric feedback")
def create(body: TestSetFromCallIn, ctx: CtxDep) -> FastJSON:
    ts = create_from_call_log(ctx.session, ctx.project_id, body)
    out = test_set_to_dict(ts, full=True)
    ctx.commit()
    return FastJSON(out, status_code=201)


@router.get("/", summary="List test sets")
def list_(
    request: Request,
    ctx: CtxDep,
    paging: PagingDep,
    metric: Annotated[int | None, Query(ge=1, le=2**31 - 1, description="only sets with items for this metric")] = None,
) -> FastJSON:
    count, rows = list_test_sets(ctx.session, ctx.project_id, metric_id=metric, offset=paging.offset, limit=paging.page_size)
    return FastJSON(paginated(request, paging, count, [test_set_to_dict(t, full=False) for t in rows]))


@router.get("/{id}/", summary="One test set with its frozen call")
def get(id: PathId, ctx: CtxDep) -> FastJSON:
    return FastJSON(test_set_to_dict(get_test_set(ctx.session, ctx.project_id, id), full=True))
