"""Importing calls from a file in the browser: the formats `judgelab import` reads (JSONL, OpenAI
message lists such as tau-bench's, Agent:/User: text, any of them gzipped), all or nothing, with
every bad line named."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from judgelab.calls.files import FORMATS, read_calls
from judgelab.calls.writer import import_payloads
from judgelab.errors import FieldError, JudgelabError
from judgelab.projects.service import resolve_agent
from judgelab.web.common import Web, form, render

router = APIRouter(include_in_schema=False)
SHOWN_ERRORS = 50


@router.get("/import")
def import_page(request: Request, ctx: Web) -> Response:
    return render(request, "import.html", ctx, formats=FORMATS, chosen={"format": "auto", "agent": ""})


@router.post("/import")
async def import_file(request: Request, ctx: Web) -> Response:
    data = form(request)
    upload: Any = data.get("file")
    chosen = {"format": str(data.get("format") or "auto"), "agent": str(data.get("agent") or "").strip()}
    problems: list[FieldError] = []
    if upload is None or not hasattr(upload, "read") or not getattr(upload, "filename", ""):
        problems.append(FieldError("file", "choose a file to import"))
    if not chosen["agent"]:
        problems.append(FieldError("agent", "name the agent the calls belong to (created if needed)"))
    if problems:
        return render(request, "import.html", ctx, 400, formats=FORMATS, chosen=chosen, problems=problems)
    raw = await upload.read()
    suffix = "".join(Path(upload.filename).suffixes[-2:]) or ".jsonl"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"upload{suffix}"
        path.write_bytes(raw)
        try:
            fmt, payloads, errors = read_calls(path, chosen["format"])
            payloads = sorted([*payloads, *((e.line or 0, e) for e in errors)], key=lambda item: item[0])
            resolve_agent(ctx.session, ctx.project_id, chosen["agent"], create=True)
            outcome = import_payloads(ctx.session, ctx.project_id, payloads, ctx.settings, default_agent=chosen["agent"],
                                      create_missing_agents=True)
        except JudgelabError as exc:
            ctx.session.rollback()
            return render(request, "import.html", ctx, 400, formats=FORMATS, chosen=chosen,
                          problems=exc.errors[:SHOWN_ERRORS], more=max(0, len(exc.errors) - SHOWN_ERRORS),
                          filename=upload.filename)
    ctx.commit()
    return render(request, "import.html", ctx, formats=FORMATS, chosen=chosen, filename=upload.filename,
                  done={"format": fmt, "calls": len(payloads), "created": outcome.created, "updated": outcome.updated})
