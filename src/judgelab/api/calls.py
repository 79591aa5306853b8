"""Call logs: list, detail and votes (under both call-logs prefixes), ingest, bulk import and export."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from judgelab.api.deps import Ctx, CtxDep, PagingDep, PathId, paginated
from judgelab.api.responses import FastJSON
from judgelab.calls.files import export_lines, parse_jsonl
from judgelab.calls.ingest import prepare_call
from judgelab.calls.queries import (
    CallFilters,
    count_calls,
    get_call_dict,
    iter_export,
    list_call_dicts,
    with_review_filters,
)
from judgelab.calls.writer import UpsertOutcome, import_payloads, upsert_calls
from judgelab.errors import InvalidInput, NotFound
from judgelab.feedback.votes import VoteIn, feedback_to_dict, mark_vote
from judgelab.labs.review_queue import likely_wrong_rank
from judgelab.metrics.service import get_metric

router = APIRouter(tags=["call logs"])
BULK_ROWS = 1000  # imports at least this large refresh the planner's statistics


def _utc(value: datetime | None) -> datetime | None:
    """Times without a zone are UTC (so naive and aware bounds compare, on both databases)."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def call_filters(
    ctx: Ctx,
    agent: int | None,
    agent_id: int | None,
    project: int | None,
    search: str | None,
    timestamp__gte: datetime | None,
    timestamp__lte: datetime | None,
) -> CallFilters:
    if agent is not None and agent_id is not None and agent != agent_id:
        raise InvalidInput("agent_id", "agent and agent_id name different agents; send one")
    if project is not None and project != ctx.project_id:
        raise NotFound("project", f"no project with id {project} for this API key")
    timestamp__gte, timestamp__lte = _utc(timestamp__gte), _utc(timestamp__lte)
    if search is not None and len(search) > 1000:
        raise InvalidInput("search", "at most 1000 characters")
    if timestamp__gte and timestamp__lte and timestamp__gte > timestamp__lte:
        raise InvalidInput("timestamp__gte", "is later than timestamp__lte")
    return CallFilters(
        agent_id=agent if agent is not None else agent_id,
        search=search if search and search.strip() else None,
        timestamp_gte=timestamp__gte,
        timestamp_lte=timestamp__lte,
    )


def list_calls_endpoint(
    request: Request,
    ctx: CtxDep,
    paging: PagingDep,
    agent: Annotated[int | None, Query(ge=1, le=2**31 - 1, description="agent id")] = None,
    agent_id: Annotated[int | None, Query(ge=1, le=2**31 - 1, description="agent id (alias)")] = None,
    project: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    search: Annotated[str | None, Query(description="words that must all appear in the transcript")] = None,
    timestamp__gte: Annotated[datetime | None, Query(description="ISO 8601; calls at or after")] = None,
    timestamp__lte: Annotated[datetime | None, Query(description="ISO 8601; calls at or before")] = None,
    metric: Annotated[int | None, Query(ge=1, le=2**31 - 1, description="a metric id, for verdict / feedback filters")] = None,
    verdict: Annotated[str | None, Query(description="pass, fail, na or error: the metric's current version's newest "
                                               "result on the call (needs metric)")] = None,
    has_feedback: Annotated[bool | None, Query(description="true: calls with feedback (on `metric`, else any); false: without")] = None,
    reviewer: Annotated[str | None, Query(max_length=200, description="calls this reviewer voted on")] = None,
    feedback: Annotated[str | None, Query(description="agree or disagree: calls where people agreed / disagreed with the judge")] = None,
    sort: Annotated[str | None, Query(description="-timestamp (newest first, the default), timestamp, or likely_wrong "
                                               "(the review queue's ranking of `metric`'s unreviewed results first)")] = None,
) -> FastJSON:
    f = call_filters(ctx, agent, agent_id, project, search, timestamp__gte, timestamp__lte)
    f = with_review_filters(f, metric, verdict, has_feedback, reviewer, feedback, sort)
    if sort == "likely_wrong" and metric is not None:
        f = replace(f, rank=likely_wrong_rank(ctx.session, ctx.project_id, metric))
    # The exact count and the page are independent reads: run them side by side on two
    # connections (both drivers release the GIL while the database works).
    counting = _COUNTERS.submit(_count_alone, ctx, f)
    rows = list_call_dicts(ctx.session, ctx.project_id, f, offset=paging.offset, limit=paging.page_size)
    return FastJSON(paginated(request, paging, counting.result(), rows))


_COUNTERS = ThreadPoolExecutor(max_workers=8, thread_name_prefix="judgelab-count")


def _count_alone(ctx: Ctx, f: CallFilters) -> int:
    with ctx.db.sessionmaker() as session:
        return count_calls(session, ctx.project_id, f)


def get_call_endpoint(id: PathId, ctx: CtxDep) -> FastJSON:
    return FastJSON(get_call_dict(ctx.session, ctx.project_id, id))


def mark_vote_endpoint(id: PathId, body: VoteIn, ctx: CtxDep) -> FastJSON:
    fb, warnings = mark_vote(ctx.session, ctx.project_id, id, body, ctx.key_name)
    metric = get_metric(ctx.session, ctx.project_id, fb.metric_id)
    out = feedback_to_dict(fb, metric.current.eval_type)
    ctx.commit()
    return FastJSON({**out, "warnings": warnings}, status_code=201)


for prefix in ("/observability/v1/call-logs-external", "/observability/v1/call-logs"):
    router.add_api_route(f"{prefix}/", list_calls_endpoint, methods=["GET"], summary="List call logs")
    router.add_api_route(f"{prefix}/{{id}}/", get_call_endpoint, methods=["GET"], summary="One call log with its results")
    router.add_api_route(
        f"{prefix}/{{id}}/mark_metric_vote/", mark_vote_endpoint, methods=["POST"], status_code=201,
        summary="Agree or disagree with a metric's result on this call",
    )


@router.post("/observability/v1/observe/", summary="Ingest one call (re-sending a call_id updates it)")
def observe(
    ctx: CtxDep,
    body: Annotated[dict[str, Any], Body(description="the call: agent, transcript_json, call_id, ...")],
) -> FastJSON:
    prepared = prepare_call(body, ctx.settings)
    outcome = upsert_calls(ctx.session, ctx.project_id, [prepared])
    ctx.commit()
    body_out = {**get_call_dict(ctx.session, ctx.project_id, outcome.ids[0]), "created": bool(outcome.created)}
    return FastJSON(body_out, status_code=201 if outcome.created else 200)


@router.post(
    "/api/v1/call-logs/import/",
    summary="Bulk import JSONL (one call per line); all-or-nothing, with a per-line error report",
    openapi_extra={"requestBody": {"content": {"application/x-ndjson": {"schema": {"type": "string"}}}, "required": True}},
)
async def import_calls(
    request: Request,
    ctx: CtxDep,
    agent: Annotated[str | None, Query(description="agent id or name for lines that name none")] = None,
) -> FastJSON:
    raw = await request.body()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput("body", f"is not UTF-8 (byte {exc.start})") from None
    default_agent: int | str | None = int(agent) if agent and agent.isdigit() and len(agent) < 10 else agent
    outcome = await run_in_threadpool(_import_text, ctx, text, default_agent)
    return FastJSON({"imported": outcome.created + outcome.updated, "created": outcome.created,
                     "updated": outcome.updated, "ids": outcome.ids, "errors": []})


def _import_text(ctx: Ctx, text: str, default_agent: int | str | None) -> UpsertOutcome:
    outcome = import_payloads(ctx.session, ctx.project_id, parse_jsonl(text), ctx.settings, default_agent=default_agent)
    ctx.commit()
    if outcome.created >= BULK_ROWS:
        ctx.db.refresh_statistics()
    return outcome


@router.get("/api/v1/call-logs/export/", summary="Export calls as JSONL that imports back unchanged",
            response_class=StreamingResponse,
            responses={200: {"content": {"application/x-ndjson": {"schema": {"type": "string"}}},
                             "description": "one call per line, in the observe payload's shape"}})
def export_calls(
    ctx: CtxDep,
    agent: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    search: str | None = None,
    timestamp__gte: datetime | None = None,
    timestamp__lte: datetime | None = None,
) -> StreamingResponse:
    f = call_filters(ctx, agent, None, None, search, timestamp__gte, timestamp__lte)
    count_calls(ctx.session, ctx.project_id, f)  # validates the filters before the stream starts

    return StreamingResponse(export_lines(iter_export(ctx.session, ctx.project_id, f)), media_type="application/x-ndjson")
