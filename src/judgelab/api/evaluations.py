"""Evaluations: the cost estimate (the evaluation jobs themselves come with the job runner)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from judgelab.api.calls import call_filters
from judgelab.api.deps import CtxDep
from judgelab.api.responses import FastJSON
from judgelab.errors import InvalidInput, NotFound
from judgelab.evaluation.estimate import estimate

router = APIRouter(prefix="/api/v1/evaluations", tags=["evaluations"])
Id = Annotated[int, Field(ge=1, le=2**31 - 1)]


class EstimateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    metrics: list[Id] = Field(min_length=1, max_length=100, description="metric ids")
    call_logs: list[Id] | None = Field(default=None, max_length=100_000, description="call ids; or use the filters")
    project_id: Id | None = None
    agent: Id | None = None
    agent_id: Id | None = None
    search: Annotated[str, Field(max_length=1000)] | None = None
    timestamp__gte: datetime | None = None
    timestamp__lte: datetime | None = None


@router.post("/estimate/", summary="Calls, evaluations, tokens and money an evaluation would take")
def estimate_endpoint(body: EstimateIn, ctx: CtxDep) -> FastJSON:
    if body.project_id is not None and body.project_id != ctx.project_id:
        raise NotFound("project_id", f"no project with id {body.project_id} for this API key")
    filtering = any(v is not None for v in (body.agent, body.agent_id, body.search, body.timestamp__gte, body.timestamp__lte))
    if body.call_logs is not None and filtering:
        raise InvalidInput("call_logs", "give call_logs or filters (agent, search, timestamp__gte/lte), not both")
    filters = call_filters(ctx, body.agent, body.agent_id, None, body.search, body.timestamp__gte, body.timestamp__lte)
    result = estimate(
        ctx.session, ctx.project_id, body.metrics, ctx.settings.model,
        call_ids=body.call_logs, filters=None if body.call_logs is not None else filters,
    )
    return FastJSON(result.as_dict())
