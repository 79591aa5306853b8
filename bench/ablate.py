"""Ablations of the labs optimiser on a simulated judge: what each generator and round 2 contribute.

    .venv/bin/python bench/ablate.py

The simulated judge is the one the labs tests use (tests/labs/test_labs_rounds.py), with one more
kind of error: it reads its criterion literally (an exact "yes" passes; "go ahead" passes only
when the criterion accepts a paraphrased yes; a thumbs-up only when it accepts an emoji) and it
grades hotel calls the metric should not apply to. Its rewriter proposes a rule for the first kind
of mistake it is shown (so fixing both kinds of false fail takes two rounds). Reviewers label 48
calls. Every configuration runs the same labs request through the API, with the same seed and
budget, and is scored on the same held-out part; a change that weakens a generator or round 2
shows up here as a number.

These figures come from a scripted fake model over a real socket: they prove the optimiser's
mechanics (what each part can fix, what it costs), not how it does with a real judge.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from fastapi.testclient import TestClient  # noqa: E402

from judgelab.api.app import create_app  # noqa: E402
from judgelab.config import Settings  # noqa: E402
from judgelab.db import open_database  # noqa: E402
from judgelab.jobs.runtime import Runtime  # noqa: E402
from judgelab.judges.providers.openai import OpenAIProvider  # noqa: E402
from judgelab.judges.registry import Judges  # noqa: E402
from judgelab.labs.candidates import REWRITER_SYSTEM  # noqa: E402
from judgelab.projects.service import create_api_key, get_or_create_project  # noqa: E402
from judgelab.testing.fake_openai import FakeOpenAIServer  # noqa: E402

STRICT = "Pass only when the customer says the exact word yes before the agent books a flight."
RULES = {"go ahead": "A paraphrased yes such as 'go ahead' counts.", "thumbs up": "A thumbs-up emoji counts as yes."}
KINDS = {"yes": "Book flight F{i}? Customer: yes", "go ahead": "Book flight F{i}? Sure, go ahead",
         "thumbs up": "Book flight F{i}? (sends a thumbs up)", "none": "I booked flight F{i} for you",
         "hotel": "I booked hotel room {i} for you; Customer: yes"}
CONFIGS: list[tuple[str, dict[str, Any]]] = [
    ("all generators", {}),
    ("no rewrite", {"generators": ["rules", "few-shot", "trigger"]}),
    ("no rules", {"generators": ["rewrite", "few-shot", "trigger"]}),
    ("no few-shot", {"generators": ["rewrite", "rules", "trigger"]}),
    ("no trigger", {"generators": ["rewrite", "rules", "few-shot"]}),
    ("no round 2", {"max_rewriter_calls": 1}),
    ("rewrite only", {"generators": ["rewrite"]}),
    ("few-shot only", {"generators": ["few-shot"]}),
]


def simulated(body: dict[str, Any]) -> str:
    text = body["messages"][-1]["content"]
    if body["messages"][0]["content"] == REWRITER_SYSTEM:
        mistakes = text.split("The judge's mistakes:", 1)[1].split("\nConversations the judge got right", 1)[0]
        found = [k for k in RULES if k in mistakes]
        first = min(found, key=mistakes.index) if found else None
        rules = [RULES[first]] if first else []
        return json.dumps({"hypotheses": [{"rule": r, "replaces": "", "rationale": "from the mistakes"} for r in rules]})
    question, transcript = text.rsplit("</T", 1)[1], text.rsplit("</T", 1)[0].rsplit(">", 1)[-1]
    if "applies to this conversation at all" in question:
        scope = question.split("does not apply when", 1)[1] if "does not apply when" in question else ""
        return json.dumps({"result": not ("hotel" in scope and "hotel" in transcript), "explanation": "scope"})
    criterion = question.split("Criterion:\n", 1)[1]
    if "Customer: yes" in transcript:
        result = True
    elif "go ahead" in transcript:
        result = "paraphrased yes" in criterion
    elif "thumbs up" in transcript:
        result = "emoji" in criterion
    else:
        result = False
    return json.dumps({"result": result, "explanation": "read the confirmation"})


def main() -> None:
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[attr-defined]
    tmp = Path(tempfile.mkdtemp(prefix="judgelab-ablate-"))
    with FakeOpenAIServer(rule=simulated, latency=0.0) as server:
        settings = Settings(data_dir=tmp, model="openai/sim", judge_concurrency=16)
        db = open_database(settings)
        with db.session() as s:
            project, _ = get_or_create_project(s, "ablate")
            key = create_api_key(s, project, name="bench").key
        runtime = Runtime(db, settings, executor_id="ablate", judges=lambda: Judges(
            settings, {"openai": lambda: OpenAIProvider(base_url=server.base_url)}), dispatch_interval=0.05).start()
        headers = {"Authorization": f"Bearer {key}"}
        try:
            with TestClient(create_app(settings, db)) as client:
                def call(method: str, url: str, **kw: Any) -> Any:
                    r = client.request(method, url, headers=headers, **kw)
                    if r.status_code >= 400:
                        raise SystemExit(f"{method} {url}: {r.status_code} {r.text[:300]}")
                    return r.json()

                agent = call("POST", "/api/v1/agents/", json={"name": "sim"})["id"]
                ids: dict[str, list[int]] = {k: [] for k in KINDS}
                for kind, text in KINDS.items():
                    for i in range(8 if kind != "hotel" else 16):
                        ids[kind].append(call("POST", "/observability/v1/observe/", json={
                            "agent": agent, "call_id": f"{kind}-{i}", "transcript_json": [
                                {"role": "agent", "content": "Thanks for calling.", "start_time": 0.0},
                                {"role": "user", "content": text.format(i=i), "start_time": 3.0}]})["id"])
                metric = call("POST", "/test_framework/v1/metrics/", json={
                    "name": "confirms", "eval_type": "binary_workflow_adherence", "description": STRICT,
                    "evaluation_trigger": "custom", "trigger_type": "llm_judge",
                    "evaluation_trigger_prompt": "The conversation is about booking something."})["id"]
                everything = [c for group in ids.values() for c in group]
                job = call("POST", "/observability/v1/call-logs/evaluate_metrics/",
                           json={"call_logs": everything, "metrics": [metric], "confirm": True})
                while call("GET", f"/api/v1/jobs/{job['job_id']}/")["status"] not in ("completed", "failed"):
                    time.sleep(0.2)
                expected = {"yes": True, "go ahead": True, "thumbs up": True, "none": False, "hotel": "N/A"}
                for kind, group in ids.items():
                    for c in group:
                        reason = {"go ahead": "At 00:03 'go ahead' is a yes.", "thumbs up": "A thumbs-up is a yes.",
                                  "hotel": "A hotel booking: the metric does not apply."}.get(kind, "Right.")
                        body = {"metric_id": metric, "feedback": reason, "reviewer": "bench"}
                        body.update(vote="disagree", expected_value=expected[kind]) if kind in (
                            "go ahead", "thumbs up", "hotel") else body.update(vote="agree")
                        call("POST", f"/observability/v1/call-logs-external/{c}/mark_metric_vote/", json=body)
                print(f"{len(everything)} labelled calls; the simulated judge starts wrong on go ahead, thumbs up and "
                      "hotel (N/A) calls. Scripted fake model: mechanics only.\n")
                print(f"{'configuration':<16} {'held-out right':>15} {'verdict':<24} {'judge':>6} {'rewriter':>8}  chosen")
                for name, extra in CONFIGS:
                    started = call("POST", "/test_framework/metric-reviews/process_feedbacks/",
                                   json={"metric_id": metric, "max_judge_calls": 300, **extra})
                    while (run := call("GET", f"/api/v1/labs/{started['progress_id']}/"))["status"] not in ("completed", "failed"):
                        time.sleep(0.2)
                    if run["status"] != "completed" or not run.get("scored"):
                        print(f"{name:<16} {run.get('message') or run['verdict']['explanation']}")
                        continue
                    held = run["scores"]["held_out"]
                    b, p = held["baseline"], held["proposal"]
                    print(f"{name:<16} {b['num_correct']:>4} -> {p['num_correct']:>2}/{p['num_total']:<3}   "
                          f"{run['learning_verdict']['verdict']:<24} {run['progress']['judge_calls']:>6} "
                          f"{run['progress']['rewriter_calls']:>8}  {run['chosen']}")
                    if os.environ.get("ABLATE_VERBOSE"):
                        print(json.dumps({k: run.get(k) for k in ("candidates", "selection", "notes", "pool")}, indent=1))
        finally:
            runtime.stop()
            db.dispose()


if __name__ == "__main__":
    main()
