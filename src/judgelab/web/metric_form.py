"""Creating and editing a metric in the browser: every eval type and trigger kind, custom code checked
for syntax (and every other rule `metrics.definition.validate` holds) before anything is saved.

A refused form comes back filled in, with each problem next to its field: nothing typed is lost."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import ValidationError

from judgelab.errors import FieldError, JudgelabError, from_pydantic
from judgelab.metrics.schemas import MetricCreate, MetricPatch
from judgelab.metrics.service import create_metric, get_metric, update_metric
from judgelab.web.common import Web, form, render, see_other

router = APIRouter(include_in_schema=False)
EVAL_TYPES = ("binary_qualitative", "binary_workflow_adherence", "enum", "numeric", "continuous_qualitative")
TEXT_FIELDS = ("name", "description", "custom_code", "evaluation_trigger_prompt", "evaluation_trigger_custom_code",
               "model", "change_note")


def _values(request: Request) -> dict[str, Any]:
    data = form(request)
    out: dict[str, Any] = {k: str(data.get(k, "")) for k in TEXT_FIELDS}
    out.update({k: str(data.get(k, "")) for k in ("type", "eval_type", "evaluation_trigger", "trigger_type", "enum_values",
                                                   "label_tolerance")})
    return out


def _body(v: dict[str, Any]) -> dict[str, Any]:
    """The API's metric body from the form: empty means not given; enum values one per line or comma."""
    body: dict[str, Any] = {k: v[k] for k in ("name", "description", "type", "eval_type", "evaluation_trigger") if v[k]}
    body["description"] = v["description"]
    enum = [x.strip() for x in v["enum_values"].replace(",", "\n").splitlines() if x.strip()]
    if v["eval_type"] == "enum":
        body["enum_values"] = enum
    if v["type"] == "custom_code":
        body["custom_code"] = v["custom_code"]
    if v["evaluation_trigger"] == "custom":
        body["trigger_type"] = v["trigger_type"] or "llm_judge"
        if body["trigger_type"] == "llm_judge":
            body["evaluation_trigger_prompt"] = v["evaluation_trigger_prompt"]
        else:
            body["evaluation_trigger_custom_code"] = v["evaluation_trigger_custom_code"]
    if v["model"].strip():
        body["model"] = v["model"].strip()
    if v["label_tolerance"].strip():
        body["label_tolerance"] = v["label_tolerance"].strip()
    return body


def _problems(exc: Exception) -> list[FieldError]:
    if isinstance(exc, ValidationError):
        return from_pydantic(exc.errors())
    assert isinstance(exc, JudgelabError)
    return exc.errors


def _page(request: Request, ctx: Any, values: dict[str, Any], *, metric: Any = None, problems: list[FieldError] | None = None,
          status_code: int = 200, tried: dict[str, Any] | None = None) -> Response:
    by_field: dict[str, list[str]] = {}
    for p in problems or []:
        by_field.setdefault(p.field.split(".")[0].split("[")[0] or "form", []).append(p.message)
    return render(request, "metric_form.html", ctx, status_code, values=values, metric=metric, eval_types=EVAL_TYPES,
                  problems=by_field, tried=tried, dry_run_call=str(form(request).get("dry_run_call", "")))


def _from_metric(metric: Any) -> dict[str, Any]:
    c = metric.current
    return {"name": metric.name, "description": c.description or "", "type": c.type, "eval_type": c.eval_type,
            "enum_values": "\n".join(c.enum_values or []), "custom_code": c.custom_code or "",
            "evaluation_trigger": c.evaluation_trigger, "trigger_type": c.trigger_type or "",
            "evaluation_trigger_prompt": c.evaluation_trigger_prompt or "",
            "evaluation_trigger_custom_code": c.evaluation_trigger_custom_code or "", "model": c.model or "",
            "label_tolerance": "" if metric.label_tolerance is None else str(metric.label_tolerance), "change_note": ""}


@router.get("/metrics/new")
def new_metric(request: Request, ctx: Web) -> Response:
    values = {k: "" for k in (*TEXT_FIELDS, "enum_values", "label_tolerance", "trigger_type")}
    values.update(type="llm_judge", eval_type="binary_qualitative", evaluation_trigger="always")
    return _page(request, ctx, values)


def dry_run(request: Request, ctx: Any, values: dict[str, Any]) -> dict[str, Any]:
    """The form's metric judged on one call, stored nowhere: what a save would judge, before saving."""
    from judgelab.calls.queries import get_call_for_judging
    from judgelab.evaluation.engine import evaluate
    from judgelab.judges.registry import Judges
    from judgelab.metrics.definition import MetricContent, validate

    raw = str(form(request).get("dry_run_call", "")).strip()
    if not raw.isdigit():
        raise JudgelabError("dry_run_call", "give the id of a call to try the metric on")
    body = MetricCreate(**_body(values))
    content = validate(MetricContent(**{k: getattr(body, k) for k in MetricContent.__dataclass_fields__
                                        if hasattr(body, k)}))
    call, _hash = get_call_for_judging(ctx.session, ctx.project_id, int(raw), with_results=True)
    others = {r["name"]: r["value"] for r in call["evaluation"]["metrics"] if r["error"] is None}
    runtime = getattr(request.app.state, "runtime", None)
    make = runtime.make_judges if runtime is not None else (lambda: Judges(ctx.settings))

    async def judge() -> Any:
        judges = make()
        try:
            return await evaluate(content, call, judges.client_for, ctx.settings.model, other_results=others)
        finally:
            await judges.aclose()

    out = asyncio.run(judge())
    return {"call_id": int(raw), "value": out.value, "explanation": out.explanation, "error": out.error,
            "llm_calls": out.llm_calls, "input_tokens": out.input_tokens, "cost_usd": out.cost_usd}


@router.post("/metrics/new")
def create(request: Request, ctx: Web) -> Response:
    values = _values(request)
    if form(request).get("action") == "dry_run":
        try:
            tried = dry_run(request, ctx, values)
        except (ValidationError, JudgelabError) as exc:
            return _page(request, ctx, values, problems=_problems(exc), status_code=400)
        return _page(request, ctx, values, tried=tried)
    try:
        metric = create_metric(ctx.session, ctx.project_id, MetricCreate(**_body(values)))
    except (ValidationError, JudgelabError) as exc:
        ctx.session.rollback()
        return _page(request, ctx, values, problems=_problems(exc), status_code=400)
    ctx.commit()
    return see_other(f"/metrics/{metric.id}")


@router.get("/metrics/{metric_id}/edit")
def edit_metric(request: Request, metric_id: int, ctx: Web) -> Response:
    metric = get_metric(ctx.session, ctx.project_id, metric_id)
    return _page(request, ctx, _from_metric(metric), metric=metric)


@router.post("/metrics/{metric_id}/edit")
def save(request: Request, metric_id: int, ctx: Web) -> Response:
    metric = get_metric(ctx.session, ctx.project_id, metric_id)
    values = _values(request)
    if form(request).get("action") == "dry_run":
        try:
            tried = dry_run(request, ctx, values)
        except (ValidationError, JudgelabError) as exc:
            return _page(request, ctx, values, metric=metric, problems=_problems(exc), status_code=400)
        return _page(request, ctx, values, metric=metric, tried=tried)
    body = _body(values)
    current = _body(_from_metric(metric))
    # Only what changed is sent, so an unchanged form makes no new version.
    patch = {k: v for k, v in body.items() if current.get(k) != v}
    for key in ("custom_code", "evaluation_trigger_prompt", "evaluation_trigger_custom_code", "model", "enum_values"):
        if key in current and key not in body:
            patch[key] = None
    if values["change_note"].strip():
        patch["change_note"] = values["change_note"].strip()
    try:
        update_metric(ctx.session, ctx.project_id, metric_id, MetricPatch(**patch))
    except (ValidationError, JudgelabError) as exc:
        ctx.session.rollback()
        return _page(request, ctx, values, metric=get_metric(ctx.session, ctx.project_id, metric_id),
                     problems=_problems(exc), status_code=400)
    ctx.commit()
    return see_other(f"/metrics/{metric_id}")
