"""API keys: list, create, revoke. Admin keys see and revoke every project's keys."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from judgelab.api.deps import CtxDep, PathId
from judgelab.api.responses import FastJSON
from judgelab.db.models import Project
from judgelab.errors import NotFound
from judgelab.projects.service import create_api_key, key_to_dict, list_keys, revoke_key

router = APIRouter(tags=["keys"])


class KeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Annotated[str, Field(max_length=200)] = ""
    project: Annotated[int, Field(ge=1, le=2**31 - 1, description="admin keys only: another project")] | None = None
    admin: bool = Field(default=False, description="admin keys only: make an admin key")


@router.get("/api/v1/keys/", summary="This project's API keys (an admin key: every project's); never the keys themselves")
def list_endpoint(ctx: CtxDep) -> FastJSON:
    rows = [key_to_dict(k) for k in list_keys(ctx.session, ctx.project_id, admin=ctx.is_admin)]
    return FastJSON({"count": len(rows), "results": rows})


@router.post("/api/v1/keys/", status_code=201, summary="Create an API key in this project; the answer holds it, once")
def create_endpoint(body: KeyIn, ctx: CtxDep) -> FastJSON:
    if body.admin:
        ctx.require_admin("admin", "create admin keys")
    project_id = body.project or ctx.project_id
    if project_id != ctx.project_id:
        ctx.require_admin("project", "create keys for another project")
    project = ctx.session.get(Project, project_id)
    if project is None:
        raise NotFound("project", f"no project with id {project_id}")
    new = create_api_key(ctx.session, project, name=body.name or f"created by {ctx.key_name}"[:200], admin=body.admin)
    out = {**key_to_dict(new.api_key), "api_key": new.key}
    ctx.commit()
    return FastJSON(out, status_code=201)


@router.post("/api/v1/keys/{id}/revoke/", summary="Revoke a key: it stops working at once here, within a second elsewhere")
def revoke_endpoint(request: Request, id: PathId, ctx: CtxDep) -> FastJSON:
    row = revoke_key(ctx.session, ctx.project_id, id, admin=ctx.is_admin)
    out = key_to_dict(row)
    ctx.commit()
    request.app.state.key_cache.clear()  # this process forgets every cached key now
    return FastJSON(out)
