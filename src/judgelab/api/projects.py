"""Projects and agents. A key sees one project; creating a project returns that project's first key."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select

from judgelab.api.deps import CtxDep, PagingDep, PathId, paginated
from judgelab.api.responses import FastJSON
from judgelab.db.models import Agent, CallLog, Project
from judgelab.errors import NotFound
from judgelab.projects.service import (
    create_agent,
    create_api_key,
    create_project,
    get_agent,
)

router = APIRouter(tags=["projects and agents"])


class ProjectIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Annotated[str, Field(min_length=1, max_length=200)]
    description: Annotated[str, Field(max_length=10_000)] = ""


class ProjectPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    description: Annotated[str, Field(max_length=10_000)] | None = None
    daily_budget_usd: Annotated[float, Field(ge=0, le=1e9, description="money per UTC day for evaluation jobs; null: the server default")] | None = None
    allowed_models: list[Annotated[str, Field(min_length=3, max_length=200)]] | None = Field(
        default=None, max_length=100, description="admin keys only: the judge models (provider/model) this project may use; null: any")


class AgentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Annotated[str, Field(min_length=1, max_length=200)]
    description: Annotated[str, Field(max_length=500_000, description="the agent's system prompt")] = ""
    project: Annotated[int, Field(ge=1, le=2**31 - 1)] | None = None


def project_to_dict(p: Project) -> dict[str, Any]:
    return {"id": p.id, "name": p.name, "description": p.description, "daily_budget_usd": p.daily_budget_usd,
            "allowed_models": p.allowed_models, "created_at": p.created_at.isoformat()}


def agent_to_dict(a: Agent, num_calls: int | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": a.id, "name": a.name, "description": a.description, "project": a.project_id,
        "created_at": a.created_at.isoformat(),
    }
    if num_calls is not None:
        out["num_calls"] = num_calls
    return out


@router.post("/api/v1/projects/", status_code=201, summary="Create a project; the answer holds its first API key, once")
def create_project_endpoint(body: ProjectIn, ctx: CtxDep) -> FastJSON:
    # Only admin keys: a project key making projects would also sidestep its project's budget.
    ctx.require_admin("name", "create projects")
    project = create_project(ctx.session, body.name, body.description)
    new_key = create_api_key(ctx.session, project, name=f"created by {ctx.key_name}"[:200])
    out = {**project_to_dict(project), "api_key": new_key.key}
    ctx.commit()
    return FastJSON(out, status_code=201)


@router.get("/api/v1/projects/", summary="The projects this key can see (its own)")
def list_projects(request: Request, ctx: CtxDep, paging: PagingDep) -> FastJSON:
    project = ctx.session.get(Project, ctx.project_id)
    rows = [project_to_dict(project)] if project and paging.page == 1 else []
    return FastJSON(paginated(request, paging, 1, rows))


@router.get("/api/v1/projects/{id}/", summary="One project")
def get_project(id: PathId, ctx: CtxDep) -> FastJSON:
    if id != ctx.project_id:
        raise NotFound("id", f"no project with id {id} for this API key")
    project = ctx.session.get(Project, id)
    assert project is not None
    return FastJSON(project_to_dict(project))


@router.patch("/api/v1/projects/{id}/", summary="Change a project's description or daily evaluation budget")
def patch_project(id: PathId, body: ProjectPatch, ctx: CtxDep) -> FastJSON:
    if id != ctx.project_id:
        raise NotFound("id", f"no project with id {id} for this API key")
    project = ctx.session.get(Project, id)
    assert project is not None
    if body.description is not None:
        project.description = body.description
    if "daily_budget_usd" in body.model_fields_set:
        project.daily_budget_usd = body.daily_budget_usd
    if "allowed_models" in body.model_fields_set:
        ctx.require_admin("allowed_models", "change a project's allow-list of judge models")
        project.allowed_models = body.allowed_models
    out = project_to_dict(project)
    ctx.commit()
    return FastJSON(out)


@router.post("/api/v1/agents/", status_code=201, summary="Create an agent")
def create_agent_endpoint(body: AgentIn, ctx: CtxDep) -> FastJSON:
    if body.project is not None and body.project != ctx.project_id:
        raise NotFound("project", f"no project with id {body.project} for this API key")
    agent = create_agent(ctx.session, ctx.project_id, body.name, body.description)
    out = agent_to_dict(agent)
    ctx.commit()
    return FastJSON(out, status_code=201)


@router.get("/api/v1/agents/", summary="List agents")
def list_agents(request: Request, ctx: CtxDep, paging: PagingDep) -> FastJSON:
    stmt = select(Agent).where(Agent.project_id == ctx.project_id)
    count = ctx.session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = ctx.session.scalars(stmt.order_by(Agent.id).offset(paging.offset).limit(paging.page_size)).all()
    counts = dict(
        ctx.session.execute(
            select(CallLog.agent_id, func.count()).where(CallLog.agent_id.in_([a.id for a in rows])).group_by(CallLog.agent_id)
        ).all()
    )
    return FastJSON(paginated(request, paging, count, [agent_to_dict(a, counts.get(a.id, 0)) for a in rows]))


@router.get("/api/v1/agents/{id}/", summary="One agent")
def get_agent_endpoint(id: PathId, ctx: CtxDep) -> FastJSON:
    return FastJSON(agent_to_dict(get_agent(ctx.session, ctx.project_id, id, field="id")))
