"""Labs run rows: start (queued for a runtime), progress, answers to questions."""

from __future__ import annotations

import difflib
import uuid
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from judgelab.db.models import LabsRun, Metric, MetricVersion
from judgelab.errors import Conflict, InvalidInput, NotFound
from judgelab.feedback.labels import normalize_expected
from judgelab.feedback.votes import LABS_MIN_FEEDBACK
from judgelab.labs.dataset import load_items
from judgelab.metrics.schemas import MetricPatch
from judgelab.metrics.service import get_metric, update_metric

DEFAULT_JUDGE_CALLS = 100
# Cross-validation's 3 folds and the final step, twice; a split run uses 1 and round 2's beam 2.
DEFAULT_REWRITER_CALLS = 8
GENERATORS = ("rewrite", "rules", "few-shot", "trigger")  # candidate generators a run may use


def start_run(
    session: Session, project_id: int, metric_id: int, *, test_set_ids: list[int] | None, metric_type: str,
    skip_evaluation: bool, simplified_prompt: str | None, max_judge_calls: int, seed: int | None,
    generators: list[str] | None = None, max_rewriter_calls: int = DEFAULT_REWRITER_CALLS,
    replace_code_trigger: bool = False,
) -> LabsRun:
    metric = get_metric(session, project_id, metric_id, field="metric_id")
    # The split's seed is fixed per metric: rerunning with new seeds until one says "improved" would
    # be a search for luck. A person may change it; the run shows which seed it used.
    if seed is None:
        seed = metric.labs_seed or 0
    elif seed != (metric.labs_seed or 0):
        metric.labs_seed = seed
    unknown = sorted(set(generators or []) - set(GENERATORS))
    if unknown:
        raise InvalidInput("generators", f"unknown generator(s) {', '.join(unknown)}; choose from {', '.join(GENERATORS)}")
    if metric_type != "llm_judge" or metric.current.type != "llm_judge":
        raise InvalidInput("metric_type", "labs improves llm_judge metrics; custom_code metrics are not supported yet")
    items = load_items(session, project_id, metric, test_set_ids)
    if len(items) < LABS_MIN_FEEDBACK:
        raise InvalidInput("metric_id", f"labs needs at least {LABS_MIN_FEEDBACK} feedback items with a known label "
                                        f"(an expected value, an agree, or a disagree on a binary result); this metric has {len(items)}")
    return queue_run(session, project_id, metric, progress={"labelled": len(items)}, params={
        "test_set_ids": test_set_ids, "skip_evaluation": skip_evaluation, "simplified_prompt": simplified_prompt,
        "max_judge_calls": max_judge_calls, "max_rewriter_calls": max_rewriter_calls, "seed": seed,
        "replace_code_trigger": replace_code_trigger,
        "generators": list(GENERATORS if generators is None else generators)})


def queue_run(session: Session, project_id: int, metric: Metric, *, params: dict[str, Any],
              progress: dict[str, Any]) -> LabsRun:
    """A queued run of any kind (labs, validation, to_code: `params["kind"]`) on the metric's current
    version; a runtime's dispatcher claims it."""
    run = LabsRun(id=str(uuid.uuid4()), project_id=project_id, metric_id=metric.id,
                  metric_version_id=metric.current.id, status="queued", stage="queued", params=params, progress=progress)
    session.add(run)
    session.flush()
    return run


def begin_run(session: Session, run_id: str, stage: str,
              executor_id: str | None = None) -> tuple[LabsRun, Metric, MetricVersion] | None:
    """Mark a run running (inside a workflow's first step) and return it with its metric and the
    version pinned when it was started; None when its row is gone. `executor_id` is the process
    running it (not always the one that claimed it: any worker may dequeue it)."""
    run = session.get(LabsRun, run_id)
    if run is None:
        return None
    run.status, run.stage = "running", stage
    if executor_id is not None:
        run.executor_id = executor_id
    metric = get_metric(session, run.project_id, run.metric_id)
    version = next(v for v in metric.versions if v.id == run.metric_version_id)
    return run, metric, version


def get_run(session: Session, project_id: int, run_id: str, field: str = "progress_id") -> LabsRun:
    run = session.get(LabsRun, run_id)
    if run is None or run.project_id != project_id:
        raise NotFound(field, f"no labs run or validation with id {run_id!r} in this project")
    return run


def run_dict(run: LabsRun) -> dict[str, Any]:
    out: dict[str, Any] = {
        "progress_id": run.id, "metric_id": run.metric_id, "status": run.status, "stage": run.stage,
        "progress": run.progress, "message": run.message, "question": run.question,
        "created_at": run.created_at, "finished_at": run.finished_at, "applied": False,
    }
    progress = run.progress or {}
    # What a run has spent, at the top level too (clients read `judge_calls` and `cost_usd` there).
    for name in ("judge_calls", "rewriter_calls", "cost_usd"):
        out[name] = progress.get(name)
    if run.result:
        out.update(run.result)
    if (run.params or {}).get("scheduled"):
        out["scheduled"] = True
    return out


def answer_run(session: Session, project_id: int, run_id: str, answer: Any, action: str | None, eval_type: str,
               enum_values: list[str] | None) -> LabsRun:
    run = get_run(session, project_id, run_id)
    if run.status != "needs_input":
        raise Conflict("progress_id", f"the run is not waiting for an answer (status {run.status})")
    if action is not None:
        if action != "skip":
            raise InvalidInput("action", "the only action is \"skip\"")
        run.answer = {"action": "skip"}
    else:
        run.answer = {"answer": normalize_expected(answer, eval_type, enum_values, field="answer")}
    return run


def claim_queued(session: Session, executor_id: str) -> list[tuple[str, str]]:
    """(run id, kind) of queued runs this executor won: `labs` or `validation`."""
    rows = session.execute(select(LabsRun.id, LabsRun.params).where(LabsRun.status == "queued")
                           .order_by(LabsRun.created_at).limit(10)).all()
    won = []
    for run_id, params in rows:
        done = session.execute(update(LabsRun).where(LabsRun.id == run_id, LabsRun.status == "queued")
                               .values(status="starting", executor_id=executor_id))
        if done.rowcount == 1:  # type: ignore[attr-defined]
            won.append((run_id, (params or {}).get("kind", "labs")))
    return won


def unified_diff(before: str, after: str) -> str:
    return "".join(difflib.unified_diff(before.splitlines(keepends=True), after.splitlines(keepends=True),
                                        fromfile="current", tofile="proposal"))


def starting_for(session: Session, executor_id: str) -> list[tuple[str, str]]:
    """Runs this executor claimed but may not have handed to DBOS before it stopped."""
    rows = session.execute(select(LabsRun.id, LabsRun.params).where(LabsRun.status == "starting",
                                                                    LabsRun.executor_id == executor_id)).all()
    return [(run_id, (params or {}).get("kind", "labs")) for run_id, params in rows]


def apply_run(session: Session, project_id: int, run_id: str, reviewer: str) -> Metric:
    """Make a completed run's proposal the metric's new version, as a person decided to."""
    run = get_run(session, project_id, run_id)
    result = run.result or {}
    if run.status != "completed" or not result.get("improved_metric_description"):
        raise Conflict("progress_id", f"only a completed labs run with a proposal can be applied (status {run.status})")
    if result.get("applied") or result.get("discarded"):
        raise Conflict("progress_id", "this proposal was already " + ("applied" if result.get("applied") else "discarded"))
    metric = get_metric(session, project_id, run.metric_id)
    if metric.current.id != run.metric_version_id:
        raise Conflict("progress_id", "the metric has changed since this run started; start a new run on the current version")
    verdict = (result.get("verdict") or {}).get("verdict")
    metric, _changed = update_metric(session, project_id, metric.id, proposal_patch(
        result, f"labs run {run.id} applied by {reviewer} (held-out verdict: {verdict})"))
    record_ledger(metric, result)
    run.result = {**result, "applied": True, "applied_version": metric.current_version, "decided_by": reviewer}
    return metric


def record_ledger(metric: Metric, result: dict[str, Any]) -> None:
    """The new version remembers the labels it was built from (see `dataset.load_items`)."""
    metric.current.trained_on = list(result.get("trained_on") or [])


def discard_run(session: Session, project_id: int, run_id: str, reviewer: str) -> LabsRun:
    run = get_run(session, project_id, run_id)
    result = run.result or {}
    if run.status != "completed" or result.get("applied"):
        raise Conflict("progress_id", f"only a completed, unapplied run can be discarded (status {run.status})")
    run.result = {**result, "discarded": True, "decided_by": reviewer}
    return run


def proposal_text(content: dict[str, Any]) -> str:
    """What a reviewer compares: the criterion, and the trigger when it is not `always`."""
    text = content["description"].rstrip() + "\n"
    if content.get("evaluation_trigger", "always") != "always":
        kind = f" ({content['trigger_type']})" if content.get("trigger_type") else ""
        text += f"\n[evaluation_trigger] {content['evaluation_trigger']}{kind}\n"
        if content.get("evaluation_trigger_prompt"):
            text += "[evaluation_trigger_prompt]\n" + content["evaluation_trigger_prompt"].rstrip() + "\n"
    return text


def proposal_patch(result: dict[str, Any], note: str) -> MetricPatch:
    """The PATCH that applies a run's proposal: its criterion and, when the run proposed one, its trigger."""
    fields: dict[str, Any] = {"description": result["improved_metric_description"], "change_note": note[:500]}
    if result.get("improved_evaluation_trigger"):
        fields["evaluation_trigger"] = result["improved_evaluation_trigger"]
        if "improved_trigger_type" in result:
            fields["trigger_type"] = result["improved_trigger_type"]
            fields["evaluation_trigger_prompt"] = result.get("improved_evaluation_trigger_prompt")
    return MetricPatch(**fields)


def proposal_fields(content: dict[str, Any], change: dict[str, Any]) -> dict[str, Any]:
    """What a completed run reports of its proposal: the content it would make, and the diff."""
    proposed = {**content, **change}
    return {
        "improved_metric_description": proposed["description"],
        "improved_evaluation_trigger": proposed["evaluation_trigger"],
        "improved_trigger_type": proposed.get("trigger_type"),
        "improved_evaluation_trigger_prompt": proposed.get("evaluation_trigger_prompt"),
        "diff": unified_diff(proposal_text(content), proposal_text(proposed)),
    }
