"""The review queue in the browser: likely-misaligned results one at a time, keys for agree,
disagree and skip, a counter toward the feedback labs needs, and labs one click away."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from judgelab.calls.queries import get_call_dict
from judgelab.feedback.votes import feedback_progress, mark_vote
from judgelab.labs.excerpt import excerpt
from judgelab.labs.review_queue import review_queue
from judgelab.metrics.service import get_metric, list_metrics
from judgelab.web.calls import _turns
from judgelab.web.common import Web, form, form_int, render, see_other, vote_from_form

router = APIRouter(include_in_schema=False)


def _skipped(raw: str) -> list[int]:
    return [int(x) for x in raw.split(",") if x.strip().isdigit()][:500]


@router.get("/review")
def review_page(request: Request, ctx: Web, metric: int | None = None, skip: str = "") -> Response:
    if metric is None:
        _n, metrics = list_metrics(ctx.session, ctx.project_id, offset=0, limit=500)
        rows = [{"metric": m, "queue": len(review_queue(ctx.session, m, limit=200)),
                 "progress": feedback_progress(ctx.session, m)} for m in metrics]
        return render(request, "review_pick.html", ctx, rows=rows)
    m = get_metric(ctx.session, ctx.project_id, metric)
    skipped = _skipped(skip)
    queue = [item for item in review_queue(ctx.session, m, limit=200) if item["call_log_id"] not in skipped]
    item = queue[0] if queue else None
    view: dict[str, Any] = {}
    if item is not None:
        call = get_call_dict(ctx.session, ctx.project_id, item["call_log_id"])
        turns = _turns(call)
        shown = excerpt(call.get("transcript_json") or [], m.current.description, item["explanation"] or "")
        for i in shown:
            turns[i]["highlight"] = True
        view = {"call": call, "excerpt": [turns[i] for i in shown], "all_turns": turns}
    return render(request, "review.html", ctx, metric=m, item=item, remaining=len(queue), skip=",".join(map(str, skipped)),
                  progress=feedback_progress(ctx.session, m), **view)


@router.post("/review")
def review_vote(request: Request, ctx: Web) -> Response:
    body = vote_from_form(request).model_copy(update={"source": "review_queue"})
    call_id = form_int(request, "call_id", low=1)
    skip = ",".join(map(str, _skipped(str(form(request).get("skip", "")))))
    mark_vote(ctx.session, ctx.project_id, call_id, body, ctx.reviewer)
    ctx.commit()
    return see_other(f"/review?metric={body.metric_id}&skip={skip}")
