"""The seed platform's answer shapes on its own paths, so its documented clients run unchanged.

Its auto-optimise routine polls `process_feedbacks_progress` until `status` is `success` or
`error`, then reads `output.metric_description` and `output.evaluation_trigger` (older versions of
its docs: `output.improved_metric_description`, `output.improved_evaluation_trigger` and
`output.meta_harness`). Both are given. judgelab's own fields stay beside them, with judgelab's
own status word in `judgelab_status`; judgelab's `/api/v1/...` paths keep judgelab's vocabulary.
"""

from __future__ import annotations

from typing import Any

IN_PROGRESS = "in_progress"
_STATUS = {"completed": "success", "failed": "error"}


def status_word(status: str) -> str:
    """success / error / in_progress (queued, running, waiting for an answer)."""
    return _STATUS.get(status, IN_PROGRESS)


def _held_out(run: dict[str, Any]) -> dict[str, Any] | None:
    scores = run.get("scores") or {}
    # The random-audit labels when there are any (the only evidence on calls nobody picked), else
    # the held-out labels: judgelab's own report, never the labels the proposal was made from.
    return ((scores.get("audit") or {}).get("proposal")) or ((scores.get("held_out") or {}).get("proposal"))


def labs_progress(run: dict[str, Any]) -> dict[str, Any]:
    out = {**run, "judgelab_status": run["status"], "status": status_word(run["status"])}
    if run["status"] == "completed" and run.get("improved_metric_description") is not None:
        held = _held_out(run)
        accuracy = (held or {}).get("accuracy") or {}
        output = {
            "metric_description": run["improved_metric_description"],
            "evaluation_trigger": run.get("improved_evaluation_trigger"),
            "evaluation_trigger_prompt": run.get("improved_evaluation_trigger_prompt"),
            "trigger_type": run.get("improved_trigger_type"),
            "improved_metric_description": run["improved_metric_description"],
            "improved_evaluation_trigger": run.get("improved_evaluation_trigger"),
            "meta_harness": {
                "optimized_code": run.get("custom_code"),  # labs proposes a judge prompt, not code
                "type": "custom_code" if run.get("custom_code") else "llm_judge",
                "score": accuracy.get("value"),
                "num_correct": (held or {}).get("num_correct"),
                "num_total": (held or {}).get("num_total"),
            },
            "verdict": (run.get("verdict") or {}).get("verdict"),
        }
        out["output"] = output
        out.setdefault("metric_description", output["metric_description"])
        out.setdefault("evaluation_trigger", output["evaluation_trigger"])
    elif run["status"] == "failed":
        out["output"] = {"error": run.get("message")}
        out["error"] = run.get("message")
    return out


def run_reviews_progress(run: dict[str, Any]) -> dict[str, Any]:
    """A run_reviews (validation) run in the same vocabulary; `output` holds its summary."""
    out = {**run, "judgelab_status": run["status"], "status": status_word(run["status"])}
    if run["status"] == "completed":
        out["output"] = {"summary": run.get("summary"), "checked": run.get("checked"), "unchanged": run.get("unchanged"),
                         "flips": run.get("flips")}
    elif run["status"] == "failed":
        out["output"] = {"error": run.get("message")}
    return out
