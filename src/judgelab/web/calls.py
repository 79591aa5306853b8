"""Calls: the filtered list with full-text search, and one call with its results and feedback forms."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import select

from judgelab.calls.queries import CallFilters, count_calls, get_call_dict, list_call_dicts, with_review_filters
from judgelab.calls.transcripts import describe_tool_call
from judgelab.db.models import Agent, Feedback, Metric, MetricVersion
from judgelab.errors import InvalidInput
from judgelab.feedback.votes import mark_vote
from judgelab.labs.review_queue import likely_wrong_rank
from judgelab.metrics.service import get_metric, list_metrics
from judgelab.web.common import Web, render, see_other, vote_from_form

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 25


def _when(value: str | None, field: str) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(field, f"expected a date and time such as 2024-05-01T08:00, got {value!r}") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


@router.get("/")
@router.get("/calls")
def calls_page(request: Request, ctx: Web, search: str = "", agent: str = "", since: str = "", until: str = "",
               page: int = 1, metric: str = "", verdict: str = "", has_feedback: str = "", reviewer: str = "",
               feedback: str = "", sort: str = "") -> Response:
    if not 1 <= page <= 10_000_000:  # beyond any real page, and beyond what PostgreSQL's OFFSET takes
        raise InvalidInput("page", f"must be a page number from 1 to 10000000 (got {page})")
    agent_id = int(agent) if agent.isdigit() and int(agent) <= 2**31 - 1 else None
    metric_id = int(metric) if metric.isdigit() and int(metric) <= 2**31 - 1 else None
    # The API's own rules and messages for the review filters (a verdict needs a metric, ...).
    filters = with_review_filters(
        CallFilters(agent_id=agent_id, search=search.strip() or None, timestamp_gte=_when(since, "since"),
                    timestamp_lte=_when(until, "until")),
        metric_id, verdict or None, {"true": True, "false": False}.get(has_feedback), reviewer.strip() or None,
        feedback or None, sort or None)
    if sort == "likely_wrong" and metric_id is not None:
        filters = replace(filters, rank=likely_wrong_rank(ctx.session, ctx.project_id, metric_id))
    total = count_calls(ctx.session, ctx.project_id, filters)
    rows = list_call_dicts(ctx.session, ctx.project_id, filters, offset=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE)
    agents = ctx.session.execute(select(Agent.id, Agent.name).where(Agent.project_id == ctx.project_id)
                                 .order_by(Agent.name)).all()
    last = max(1, -(-total // PAGE_SIZE))
    query = {"search": search, "agent": agent, "since": since, "until": until, "metric": metric, "verdict": verdict,
             "has_feedback": has_feedback, "reviewer": reviewer, "feedback": feedback, "sort": sort}
    _n, metrics = list_metrics(ctx.session, ctx.project_id, offset=0, limit=500)
    return render(request, "calls.html", ctx, calls=rows, total=total, page=page, last=last, agents=agents, q=query,
                  metrics=metrics)


def _tool_label(turn: dict[str, Any]) -> str:
    """What a tool fold's summary says: the tool's name and, for a call, its arguments (shortened)."""
    calls = [c for c in turn.get("tool_calls") or [] if isinstance(c, dict)]
    content = str(turn.get("content") or "")
    if calls:
        label = "; ".join(describe_tool_call(c) for c in calls)
    elif str(turn.get("role", "")).startswith(("tool_call", "function_call")) and content:
        label = content  # already name(arguments)
    else:
        return str(turn.get("name") or turn.get("tool_name") or "")
    return label[:120] + ("…" if len(label) > 120 else "")


def _turns(call: dict[str, Any]) -> list[dict[str, Any]]:
    turns = []
    for n, turn in enumerate(call.get("transcript_json") or [], 1):
        role = str(turn.get("role", ""))
        kind = "tool" if role.startswith(("tool", "function")) else ("user" if role in ("user", "customer") else "agent")
        turns.append({"n": n, "role": role, "kind": kind, "content": turn.get("content") or "", "start": turn.get("start_time"),
                      "tool_calls": turn.get("tool_calls"), "tool": _tool_label(turn)})
    return turns


def _call_view(ctx: Any, call_id: int) -> dict[str, Any]:
    call = get_call_dict(ctx.session, ctx.project_id, call_id)
    metric_ids = [r["metric_id"] for r in call["evaluation"]["metrics"]]
    metrics = {m.id: m for m in ctx.session.scalars(select(Metric).where(Metric.id.in_(metric_ids)))} if metric_ids else {}
    current = ctx.session.scalars(select(Feedback).where(Feedback.call_log_id == call["id"], Feedback.is_current.is_(True))
                                  .order_by(Feedback.created_at)).all()
    votes = {f.metric_id: f for f in current if f.reviewer == ctx.reviewer}
    versions = dict(ctx.session.execute(select(MetricVersion.id, MetricVersion.version).where(
        MetricVersion.id.in_([f.metric_version_id for f in current if f.metric_version_id]))).all()) if current else {}
    everyone: dict[int, list[dict[str, Any]]] = {}
    for f in current:  # every reviewer's current vote, with when and on which version
        everyone.setdefault(f.metric_id, []).append({"reviewer": f.reviewer, "vote": f.vote, "feedback": f.feedback,
                                                     "when": f.created_at, "version": versions.get(f.metric_version_id)})
    results = [{**r, "eval_type": metrics[r["metric_id"]].current.eval_type if r["metric_id"] in metrics else None,
                "enum_values": metrics[r["metric_id"]].current.enum_values if r["metric_id"] in metrics else None,
                "my_vote": votes.get(r["metric_id"]), "votes": everyone.get(r["metric_id"], [])}
               for r in call["evaluation"]["metrics"]]
    return {"call": call, "turns": _turns(call), "results": results}


@router.get("/calls/{call_id}")
def call_page(request: Request, call_id: int, ctx: Web) -> Response:
    return render(request, "call.html", ctx, **_call_view(ctx, call_id))


@router.post("/calls/{call_id}/vote")
def vote(request: Request, call_id: int, ctx: Web) -> Response:
    body = vote_from_form(request)
    metric_id = body.metric_id
    get_metric(ctx.session, ctx.project_id, metric_id, field="metric_id")
    _fb, warnings = mark_vote(ctx.session, ctx.project_id, call_id, body, ctx.reviewer)
    ctx.commit()
    if request.headers.get("hx-request") != "true":
        return see_other(f"/calls/{call_id}")
    view = _call_view(ctx, call_id)
    result = next(r for r in view["results"] if r["metric_id"] == metric_id)
    return render(request, "_result.html", ctx, call=view["call"], r=result, saved=True, warnings=warnings)
