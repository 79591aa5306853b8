"""A labs run in the browser: live progress, the question it may ask, the proposal as a
side-by-side diff with its held-out scores and verdict, apply or discard; and validations."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from judgelab.labs.service import answer_run, apply_run, discard_run, get_run, proposal_text, run_dict
from judgelab.labs.validation import mark_flip
from judgelab.metrics.service import content_of, get_metric
from judgelab.web.common import Web, form, optional_text, render, see_other
from judgelab.web.views import side_by_side

router = APIRouter(include_in_schema=False)
FINISHED = ("completed", "failed")


def _run_view(ctx: Any, run_id: str) -> dict[str, Any]:
    run = get_run(ctx.session, ctx.project_id, run_id, field="id")
    metric = get_metric(ctx.session, ctx.project_id, run.metric_id)
    out = run_dict(run)
    version = next((v for v in metric.versions if v.id == run.metric_version_id), metric.current)
    before = content_of(version).as_dict()
    diff = []
    if out.get("improved_metric_description"):
        after = {**before, "description": out["improved_metric_description"]}
        if out.get("improved_evaluation_trigger"):
            after.update(evaluation_trigger=out["improved_evaluation_trigger"],
                         trigger_type=out.get("improved_trigger_type", before.get("trigger_type")),
                         evaluation_trigger_prompt=out.get("improved_evaluation_trigger_prompt",
                                                           before.get("evaluation_trigger_prompt")))
        diff = side_by_side(proposal_text(before), proposal_text(after))
    return {"run": out, "metric": metric, "diff": diff, "finished": run.status in FINISHED,
            "kind": (run.params or {}).get("kind", "labs")}


@router.get("/labs/{run_id}")
def labs_page(request: Request, run_id: str, ctx: Web) -> Response:
    return render(request, "labs.html", ctx, **_run_view(ctx, run_id))


@router.get("/labs/{run_id}/status")
@router.get("/validations/{run_id}/status")
def run_status(request: Request, run_id: str, ctx: Web) -> Response:
    view = _run_view(ctx, run_id)
    if view["finished"] or view["run"]["status"] == "needs_input":
        # The whole page changes (diff, scores, question): reload it rather than patch a fragment.
        return Response(status_code=204, headers={"HX-Refresh": "true"})
    return render(request, "_labs_status.html", ctx, **view)


@router.post("/labs/{run_id}/answer")
def labs_answer(request: Request, run_id: str, ctx: Web) -> Response:
    data = form(request)
    run = get_run(ctx.session, ctx.project_id, run_id)
    metric = get_metric(ctx.session, ctx.project_id, run.metric_id)
    skip = data.get("action") == "skip"
    answer_run(ctx.session, ctx.project_id, run_id, None if skip else optional_text(str(data.get("answer", ""))),
               "skip" if skip else None, metric.current.eval_type, metric.current.enum_values)
    ctx.commit()
    return see_other(f"/labs/{run_id}")


@router.post("/labs/{run_id}/apply")
def labs_apply(run_id: str, ctx: Web) -> Response:
    metric = apply_run(ctx.session, ctx.project_id, run_id, ctx.reviewer)
    ctx.commit()
    return see_other(f"/metrics/{metric.id}")


@router.post("/labs/{run_id}/discard")
def labs_discard(run_id: str, ctx: Web) -> Response:
    discard_run(ctx.session, ctx.project_id, run_id, ctx.reviewer)
    ctx.commit()
    return see_other(f"/labs/{run_id}")


@router.get("/validations/{run_id}")
def validation_page(request: Request, run_id: str, ctx: Web) -> Response:
    return render(request, "validation.html", ctx, **_run_view(ctx, run_id))


@router.post("/validations/{run_id}/flips/{index}")
def validation_mark(request: Request, run_id: str, index: int, ctx: Web) -> Response:
    data = form(request)
    mark_flip(ctx.session, ctx.project_id, run_id, index, data.get("right") == "true", str(data.get("feedback", "")),
              None, ctx.reviewer)
    ctx.commit()
    return see_other(f"/validations/{run_id}")
