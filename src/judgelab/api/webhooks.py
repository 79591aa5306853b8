"""Calls straight from voice platforms: end-of-call webhooks, signed, idempotent on the platform's call id.

Set a project's secret with `PUT /api/v1/webhooks/{platform}/secret` (an admin key): Vapi's server
URL secret (or HMAC credential secret), Retell's API key (Retell signs with it), or ElevenLabs'
webhook secret. Then point the platform at `POST /webhooks/{platform}/{project_id}`. That path
takes no API key (platforms cannot send one): the signature is the authentication, checked on the
raw body before anything is parsed. A call the platform sends again (Retell's `call_ended` then
`call_analyzed`, a retried delivery) updates the same call, by the platform's call id.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, HTTPException, Path, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from judgelab.api.deps import CtxDep, get_db
from judgelab.api.responses import FastJSON
from judgelab.calls import platforms
from judgelab.calls.ingest import prepare_call
from judgelab.calls.writer import upsert_calls
from judgelab.db.models import Project
from judgelab.errors import InvalidInput

router = APIRouter(tags=["webhooks"])
Platform = Literal["vapi", "retell", "elevenlabs"]


class SecretIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    secret: Annotated[str, Field(min_length=8, max_length=500, description="what the platform signs its webhooks with")]


@router.put("/api/v1/webhooks/{platform}/secret/", summary="Set this project's secret for a voice platform's webhooks")
def set_secret(platform: Platform, body: SecretIn, ctx: CtxDep) -> FastJSON:
    ctx.require_admin("platform", "set a webhook secret")
    project = ctx.session.get(Project, ctx.project_id)
    assert project is not None
    project.webhook_secrets = {**(project.webhook_secrets or {}), platform: body.secret}
    ctx.commit()
    return FastJSON({"platform": platform, "configured": True, "url": f"/webhooks/{platform}/{ctx.project_id}/"})


@router.delete("/api/v1/webhooks/{platform}/secret/", summary="Stop accepting a platform's webhooks for this project")
def delete_secret(platform: Platform, ctx: CtxDep) -> FastJSON:
    ctx.require_admin("platform", "remove a webhook secret")
    project = ctx.session.get(Project, ctx.project_id)
    assert project is not None
    project.webhook_secrets = {k: v for k, v in (project.webhook_secrets or {}).items() if k != platform}
    ctx.commit()
    return FastJSON({"platform": platform, "configured": False})


@router.post("/webhooks/{platform}/{project_id}/", summary="A voice platform's end-of-call event (signed; no API key)")
async def receive(platform: Platform, project_id: Annotated[int, Path(ge=1, le=2**31 - 1)], request: Request) -> FastJSON:
    raw = await request.body()
    db = get_db(request)
    settings = request.app.state.settings
    headers = {k.lower(): v for k, v in request.headers.items()}

    def store() -> tuple[int, dict[str, Any]]:
        with db.session() as session:
            project = session.get(Project, project_id)
            secret = ((project.webhook_secrets or {}) if project is not None else {}).get(platform)
            if secret is None:
                # Unknown project and unconfigured platform read the same: nothing to probe.
                raise HTTPException(404, f"no {platform} webhook is configured here")
            problem = platforms.verify(platform, secret, headers, raw)
            if problem is not None:
                raise HTTPException(401, f"{platform} signature refused: {problem}")
            try:
                body = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                raise InvalidInput("body", f"is not JSON ({exc})") from None
            try:
                payload = platforms.event_to_call(platform, body)
            except platforms.EventError as exc:
                raise InvalidInput(exc.field, str(exc)) from None
            if payload is None:
                return 200, {"status": "ignored", "reason": "not an end-of-call event"}
            prepared = prepare_call({k: v for k, v in payload.items() if v is not None}, settings)
            outcome = upsert_calls(session, project_id, [prepared], create_missing_agents=True)
            session.commit()
            return (201 if outcome.created else 200), {"status": "stored", "call_log_id": outcome.ids[0],
                                                       "call_id": payload["call_id"], "created": bool(outcome.created)}

    status, out = await run_in_threadpool(store)
    return FastJSON(out, status_code=status)
