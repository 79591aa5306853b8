"""Validation: run a prompt (the applied version, or a proposal before applying it) on the
labelled calls and on a sample of recent production calls, and report only what flipped.

A flip on a labelled call is *fixed* (now matches the label) or *regressed* (matched, no longer
does); on an unlabelled call it is *changed*, and a person can mark it right or wrong, which
becomes feedback like any other vote.
"""

from __future__ import annotations

import asyncio
from typing import Any

from dbos import DBOS
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from judgelab.calls.queries import get_call_for_judging
from judgelab.db.models import LabsRun, MetricResult
from judgelab.errors import Conflict, InvalidInput, NotFound
from judgelab.evaluation.estimate import CONFIRM_ABOVE, estimate
from judgelab.feedback.votes import VoteIn, mark_vote
from judgelab.jobs import state
from judgelab.labs.dataset import fingerprint, load_items
from judgelab.labs.service import begin_run, get_run, queue_run, run_dict
from judgelab.labs.steps import Spend, judge_all, labs_update
from judgelab.metrics.definition import BINARY_EVAL_TYPES
from judgelab.metrics.service import content_of, get_metric


def _previous(session: Session, metric_id: int, call_ids: list[int], exclude_version: int | None) -> dict[int, Any]:
    """The newest stored verdict per call, from another version than the one validated."""
    if not call_ids:
        return {}
    cond = [MetricResult.metric_id == metric_id, MetricResult.call_log_id.in_(call_ids), MetricResult.error.is_(None)]
    if exclude_version is not None:
        cond.append(MetricResult.metric_version_id != exclude_version)
    newest = select(func.max(MetricResult.id)).where(*cond).group_by(MetricResult.call_log_id)
    rows = session.execute(select(MetricResult.call_log_id, MetricResult.value).where(MetricResult.id.in_(newest))).all()
    return {c: v for c, v in rows}


def start_validation(session: Session, project_id: int, metric_id: int, *, description: str | None, sample: int,
                     confirm: bool, max_judge_calls: int, default_model: str | None) -> LabsRun:
    metric = get_metric(session, project_id, metric_id)
    current = metric.current
    if current.type != "llm_judge":
        raise InvalidInput("id", "validation runs llm_judge metrics; custom_code metrics are not supported yet")
    labelled = load_items(session, project_id, metric, None)
    labelled_calls = [i["call"]["id"] for i in labelled if i["call"].get("id")]
    newest = (select(MetricResult.call_log_id).where(MetricResult.metric_id == metric.id,
                                                     MetricResult.call_log_id.notin_(labelled_calls or [0]))
              .group_by(MetricResult.call_log_id).order_by(func.max(MetricResult.id).desc()).limit(sample))
    sampled = list(session.scalars(newest).all()) if sample else []
    ids = list(dict.fromkeys(labelled_calls + sampled))
    guess = estimate(session, project_id, [metric.id], default_model, call_ids=ids) if ids else None
    if guess is not None and guess.calls > CONFIRM_ABOVE and not confirm:
        raise Conflict("confirm", f"validation would judge {guess.calls} calls (more than {CONFIRM_ABOVE}); read the "
                                  "estimate and send \"confirm\": true", extra={"estimate": guess.as_dict()})
    if not ids:
        raise InvalidInput("id", "nothing to validate on: the metric has no labelled calls and no results")
    return queue_run(session, project_id, metric, progress={"labelled": len(labelled_calls), "sampled": len(sampled)},
                     params={"kind": "validation", "description": description, "labelled_calls": labelled_calls,
                             "sampled": sampled, "max_judge_calls": max_judge_calls, "max_rewriter_calls": 0})


def _load(run_id: str) -> dict[str, Any]:
    rt = state.current()
    with rt.db.session() as session:
        begun = begin_run(session, run_id, "loading", executor_id=DBOS.executor_id)
        if begun is None:
            return {"error": "gone"}
        run, metric, version = begun
        content = content_of(version).as_dict()
        proposal = run.params.get("description")
        if proposal:
            content["description"] = proposal
        # An applied version is compared with the versions before it; a proposal with what is stored now.
        previous = _previous(session, metric.id, run.params["labelled_calls"] + run.params["sampled"],
                             None if proposal else version.id)
        labels = {i["call"]["id"]: i["label"] for i in load_items(session, run.project_id, metric, None) if i["call"].get("id")}
        targets = []
        for call_id in dict.fromkeys(run.params["labelled_calls"] + run.params["sampled"]):
            if call_id not in previous:
                continue  # no earlier verdict: nothing can have flipped
            call, _ = get_call_for_judging(session, run.project_id, call_id, with_results=False)
            slim = {k: call.get(k) for k in ("id", "transcript", "transcript_json", "agent_description", "metadata",
                                             "dynamic_variables")}
            targets.append({"call_id": call_id, "call_ref": call["call_id"], "call": slim,
                            "fingerprint": fingerprint(slim), "previous": previous[call_id],
                            "labelled": call_id in labels, "label": labels.get(call_id)})
        return {"content": content, "model": content.get("model") or rt.settings.model, "targets": targets,
                "params": run.params}


@DBOS.step(name="judgelab.validation_load")
async def validation_load(run_id: str) -> dict[str, Any]:
    return await asyncio.to_thread(_load, run_id)


def classify(target: dict[str, Any], new: Any) -> str | None:
    before, after = repr(target["previous"]), repr(new)
    if before == after:
        return None
    if not target["labelled"]:
        return "changed"
    label = repr(target["label"])
    if after == label:
        return "fixed"
    if before == label:
        return "regressed"
    return "changed"


@DBOS.workflow(name="judgelab.validation_run")
async def validation_run(run_id: str) -> str:
    ctx = await validation_load(run_id)
    if "error" in ctx:
        return "gone"
    targets, params = ctx["targets"], ctx["params"]
    spend = Spend(params["max_judge_calls"], 0)
    await labs_update(run_id, {"stage": "judging", "progress": {"targets": len(targets), **spend.as_dict()}})
    predicted = await judge_all(ctx["content"], targets, ctx["model"], spend, {})
    if predicted is None:
        await labs_update(run_id, {"status": "failed", "message": f"the judge-call budget ({spend.judge_budget}) cannot "
                                   f"pay for {len(targets)} calls; raise max_judge_calls or lower sample"})
        return "failed"
    flips: list[dict[str, Any]] = []
    for target, new in zip(targets, predicted):
        kind = "error" if new == "__error__" else classify(target, new)
        if kind is not None:
            flips.append({"index": len(flips), "kind": kind, "call_log_id": target["call_id"], "call_id": target["call_ref"],
                          "before": target["previous"], "after": None if kind == "error" else new,
                          "label": target["label"], "marked": None})
    summary = {k: sum(f["kind"] == k for f in flips) for k in ("fixed", "regressed", "changed", "error")}
    result = {"kind": "validation", "flips": flips, "summary": summary, "checked": len(targets),
              "unchanged": len(targets) - len(flips), "validated": "proposal" if params.get("description") else "applied version"}
    await labs_update(run_id, {"status": "completed", "stage": "done", "result": result,
                               "progress": {"targets": len(targets), **spend.as_dict()}})
    return "completed"


def mark_flip(session: Session, project_id: int, run_id: str, index: int, right: bool, feedback: str,
              expected_value: Any, reviewer: str) -> dict[str, Any]:
    """A person's word on an unlabelled flip becomes feedback on that call, like any vote."""
    run = get_run(session, project_id, run_id)
    if (run.params or {}).get("kind") != "validation" or run.status != "completed" or not run.result:
        raise Conflict("id", "this validation has no finished report to mark")
    flips = list(run.result["flips"])
    if not 0 <= index < len(flips):
        raise NotFound("index", f"the report has {len(flips)} flips (0 to {len(flips) - 1})")
    flip = flips[index]
    metric = get_metric(session, project_id, run.metric_id)
    if right:
        expected = flip["after"]
    elif expected_value is not None:
        expected = expected_value
    elif metric.current.eval_type in BINARY_EVAL_TYPES and isinstance(flip["after"], bool):
        expected = not flip["after"]
    else:
        raise InvalidInput("expected_value", "say what the right value is (the flip was not binary)")
    stored = session.scalar(select(MetricResult.value).where(MetricResult.call_log_id == flip["call_log_id"],
                                                             MetricResult.metric_id == metric.id)
                            .order_by(MetricResult.id.desc()).limit(1))
    body = VoteIn(metric_id=metric.id, vote="agree" if repr(stored) == repr(expected) else "disagree",
                  feedback=feedback, expected_value="N/A" if expected is None else expected, source="validation_flip")
    fb, warnings = mark_vote(session, project_id, flip["call_log_id"], body, reviewer)
    flips[index] = {**flip, "marked": "right" if right else "wrong", "feedback_id": fb.id}
    run.result = {**run.result, "flips": flips}
    return {**run_dict(run), "warnings": warnings}
