"""The review queue in the browser: likely-misaligned results one at a time, keys for agree,
disagree and skip, a counter toward the feedback labs needs, and labs one click away."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from judgelab.calls.queries import get_call_dict
from judgelab.errors import InvalidInput
from judgelab.feedback.labels import normalize_expected
from judgelab.feedback.votes import VoteIn, feedback_progress, mark_vote
from judgelab.labs.audit import draw_sample, get_sample, sample_dict
from judgelab.labs.excerpt import excerpt
from judgelab.labs.review_queue import review_queue
from judgelab.metrics.service import get_metric, list_metrics
from judgelab.web.calls import _turns
from judgelab.web.common import Web, form, form_int, optional_text, render, see_other, vote_from_form

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


@router.post("/review/audit")
def audit_start(request: Request, ctx: Web) -> Response:
    """Draw a random audit sample and review it blind."""
    metric_id = form_int(request, "metric_id", low=1)
    size = form_int(request, "size", 12, low=1, high=500)
    sample = draw_sample(ctx.session, ctx.project_id, metric_id, size, seed=None, blind=True, created_by=ctx.reviewer)
    ctx.commit()
    return see_other(f"/review/audit/{sample.id}")


@router.get("/review/audit/{sample_id}")
def audit_page(request: Request, sample_id: int, ctx: Web) -> Response:
    """One unlabelled call of the sample at a time, without the judge's verdict (shown after the vote)."""
    sample = get_sample(ctx.session, ctx.project_id, sample_id)
    m = get_metric(ctx.session, ctx.project_id, sample.metric_id)
    state = sample_dict(ctx.session, sample, m)
    todo = [e for e in state["calls"] if not e["labelled"]]
    view: dict[str, Any] = {}
    if todo:
        call = get_call_dict(ctx.session, ctx.project_id, todo[0]["call_log_id"])
        view = {"call": call, "all_turns": _turns(call)}
    last = [e for e in state["calls"] if e["labelled"]][-1:] or [None]
    return render(request, "audit.html", ctx, metric=m, sample=state, last=last[0], **view)


@router.post("/review/audit/{sample_id}")
def audit_vote(request: Request, sample_id: int, ctx: Web) -> Response:
    """The reviewer says the right value; the vote agrees or disagrees with the stored verdict."""
    sample = get_sample(ctx.session, ctx.project_id, sample_id)
    call_id = form_int(request, "call_id", low=1)
    expected = optional_text(str(form(request).get("expected_value", "")))
    if expected is None:
        raise InvalidInput("expected_value", "say what the right value is")
    m = get_metric(ctx.session, ctx.project_id, sample.metric_id)
    judged = next((r["value"] for r in get_call_dict(ctx.session, ctx.project_id, call_id)["evaluation"]["metrics"]
                   if r["metric_id"] == m.id), None)
    right = normalize_expected(expected, m.current.eval_type, m.current.enum_values)
    vote = "agree" if repr(right) == repr(judged) else "disagree"
    body = VoteIn(metric_id=m.id, vote=vote, feedback=str(form(request).get("feedback", "")), expected_value=expected,
                  source="random_audit", audit_sample_id=sample.id)
    mark_vote(ctx.session, ctx.project_id, call_id, body, ctx.reviewer)
    ctx.commit()
    return see_other(f"/review/audit/{sample.id}")


@router.post("/review")
def review_vote(request: Request, ctx: Web) -> Response:
    body = vote_from_form(request).model_copy(update={"source": "review_queue"})
    call_id = form_int(request, "call_id", low=1)
    skip = ",".join(map(str, _skipped(str(form(request).get("skip", "")))))
    mark_vote(ctx.session, ctx.project_id, call_id, body, ctx.reviewer)
    ctx.commit()
    return see_other(f"/review?metric={body.metric_id}&skip={skip}")
