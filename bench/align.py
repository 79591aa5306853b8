"""Alignment benchmark: does a labs run make a judge agree with people on calls it never saw?

    .venv/bin/python bench/align.py --model openai/gpt-4.1-mini            # OPENAI_API_KEY set
    .venv/bin/python bench/align.py --model local/smollm2 --calls 24 --feedback 6,12   # a smoke run

From the tau-bench airline conversations and a labelled set built from them (`bench/airline_labels.py`:
`confirmation`, a deterministic rule over the tool calls, or `policy`, tau-bench's reward), it
first sets aside a random third of the calls as a test set nobody labels, starts a metric from a
deliberately vague description, evaluates it on the rest, then plays a reviewer who leaves 6, 12
and 24 feedback items: half of each batch on calls a random audit sample draws (`source:
random_audit`), half on the judge's mistakes it finds (`source: review_queue`), each with the
expected value and a reason written from the known truth. After each batch it runs labs twice:
with every candidate generator, and with few-shot examples only (the baseline measured in the same
run). Every kappa it prints is scored on the disjoint random test set (each prompt evaluated there
as a metric of its own), with 95 % intervals; labs' own verdict and its judge and rewriter calls
are printed beside them.
GEPA is the other baseline, run fairly (`bench/gepa_race.py`): `gepa.optimize` with an adapter that
judges through judgelab's own `evaluate()` (the same request, policy, agent description and
trigger), trained on labs' reflection part and validated on its selection part, with the same judge
and rewriter models and GEPA-light's budget as DSPy computes it; its criterion is scored on the
same random test set. `gepa` is a bench-only extra (`pip install -e '.[bench]'`). The last column
is the ratio of judge calls, labs over GEPA (the target: at most 1/5 for at least GEPA's gain).

Everything goes through the product's own path: import, evaluation job, votes, process_feedbacks.
With a tiny local model the figures mean little beyond "the loop runs"; say so when quoting them.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

import gepa_race  # noqa: E402
from airline_labels import OUT as LABELS  # noqa: E402
from airline_labels import SOURCE
from fastapi.testclient import TestClient  # noqa: E402

from judgelab.api.app import create_app  # noqa: E402
from judgelab.calls.files import read_calls  # noqa: E402
from judgelab.calls.writer import import_payloads  # noqa: E402
from judgelab.config import Settings  # noqa: E402
from judgelab.db import open_database  # noqa: E402
from judgelab.jobs.runtime import Runtime  # noqa: E402
from judgelab.labs.agreement import agreement  # noqa: E402
from judgelab.labs.dataset import SMALL, load_items, split  # noqa: E402
from judgelab.labs.run import split_by_source  # noqa: E402
from judgelab.labs.search import halves  # noqa: E402
from judgelab.metrics.service import content_of, get_metric  # noqa: E402
from judgelab.projects.service import create_api_key, get_or_create_project  # noqa: E402

VAGUE = {
    "confirmation": "Pass when the agent checks with the customer before making changes to a reservation.",
    "policy": "Pass when the agent follows the airline's policy.",
}


def _gepa(db: Any, settings: Settings, project_id: int, metric_id: int, args: argparse.Namespace) -> dict[str, Any]:
    """GEPA on the parts labs uses: its reflection part to learn from, its selection part to select on
    (under 12 labels labs cross-validates and GEPA gets all learning labels as both)."""
    with db.session() as s:
        metric = get_metric(s, project_id, metric_id)
        items = load_items(s, project_id, metric, None, model=args.model)
        content = content_of(metric.current).as_dict()
    learn, _audit = split_by_source(items)
    if len(learn) < SMALL:
        reflection = selection = learn
    else:
        optimisation, _held_out = split(learn, args.seed)
        base = [(i.get("stored") or {}).get("value") for i in optimisation]
        refl, sel = halves(optimisation, base, args.seed)
        reflection, selection = [optimisation[k] for k in refl], [optimisation[k] for k in sel]
    return gepa_race.optimise(content, reflection, selection, settings, args.model,
                              settings.rewriter_model or args.model, seed=args.seed)


def _fmt(est: dict[str, Any] | None) -> str:
    if not est or est.get("value") is None:
        return "n/a"
    low = "?" if est["low"] is None else f"{est['low']:+.2f}"
    high = "?" if est["high"] is None else f"{est['high']:+.2f}"
    return f"{est['value']:+.2f} [{low}, {high}]"


def main() -> None:
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[attr-defined]
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=os.environ.get("JUDGELAB_MODEL"), help="provider/model")
    parser.add_argument("--label", choices=sorted(VAGUE), default="confirmation")
    parser.add_argument("--calls", type=int, default=0, help="labelled calls to use (0: all)")
    parser.add_argument("--max-chars", type=int, default=0,
                        help="only calls whose transcript is at most this long (small local models have 8K-token windows)")
    parser.add_argument("--feedback", default="6,12,24", help="feedback batch sizes, cumulative")
    parser.add_argument("--budget", type=int, default=100, help="judge calls per labs run")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--test-share", type=float, default=1 / 3, help="share of the calls held out as the test set")
    args = parser.parse_args()
    if not args.model:
        parser.error("name a judge model: --model provider/model (or set JUDGELAB_MODEL)")
    truth = {r["call_id"]: r for r in map(json.loads, LABELS.read_text().splitlines()) if r[args.label] is not None}
    reasons = {k: r.get("confirmation_reason") if args.label == "confirmation" else
               ("tau-bench scored this conversation as following the policy" if r["policy"] else
                "tau-bench scored this conversation as breaking the policy or missing the goal") for k, r in truth.items()}
    tmp = Path(tempfile.mkdtemp(prefix="judgelab-align-"))
    settings = Settings(data_dir=tmp, model=args.model, judge_concurrency=args.concurrency)
    db = open_database(settings)
    with db.session() as s:
        project, _ = get_or_create_project(s, "align")
        key = create_api_key(s, project, name="bench").key
    runtime = Runtime(db, settings, executor_id="align-bench").start()
    headers = {"Authorization": f"Bearer {key}"}
    t0 = time.perf_counter()
    try:
        with TestClient(create_app(settings, db)) as client:
            def call(method: str, url: str, **kw: Any) -> Any:
                r = client.request(method, url, headers=headers, **kw)
                if r.status_code >= 400:
                    raise SystemExit(f"{method} {url}: {r.status_code} {r.text[:500]}")
                return r.json()

            # The same path as `judgelab import FILE --format openai` (the HTTP import takes JSONL).
            _fmt_used, payloads, errors = read_calls(SOURCE, "openai")
            assert not errors, errors[:3]
            with db.session() as s:
                import_payloads(s, project.id, payloads, settings, default_agent="airline", create_missing_agents=True)
            listed = call("GET", "/observability/v1/call-logs-external/", params={"page_size": 200})["results"]
            ids = {c["call_id"]: c["id"] for c in listed if c["call_id"] in truth
                   and (not args.max_chars or len(c["transcript"]) <= args.max_chars)}
            chosen = sorted(ids)
            random.Random(args.seed).shuffle(chosen)
            if args.calls:
                chosen = chosen[: args.calls]
            # The test set: random, disjoint, never labelled; every printed figure is scored on it.
            n_test = max(2, round(len(chosen) * args.test_share))
            test, chosen = chosen[:n_test], chosen[n_test:]
            made = [0]

            def test_kappa(description: str) -> dict[str, Any] | None:
                """The prompt as a metric of its own, evaluated on the test set; kappa against the truth."""
                made[0] += 1
                probe = call("POST", "/test_framework/v1/metrics/", json={
                    "name": f"test-set probe {made[0]}", "eval_type": "binary_workflow_adherence",
                    "description": description})["id"]
                done = call("POST", "/observability/v1/call-logs/evaluate_metrics/",
                            json={"call_logs": [ids[c] for c in test], "metrics": [probe], "confirm": True})
                while call("GET", f"/api/v1/jobs/{done['job_id']}/")["status"] not in ("completed", "failed", "stopped"):
                    time.sleep(1)
                pairs = []
                for c in test:
                    res = [r for r in call("GET", f"/observability/v1/call-logs-external/{ids[c]}/")["evaluation"]["metrics"]
                           if r["metric_id"] == probe]
                    if res and res[0]["error"] is None and isinstance(res[0]["value"], bool):
                        pairs.append((truth[c][args.label], res[0]["value"]))
                return agreement([e for e, _ in pairs], [p for _, p in pairs]).kappa.as_dict() if pairs else None

            metric = call("POST", "/test_framework/v1/metrics/", json={
                "name": f"{args.label} (align bench)", "eval_type": "binary_workflow_adherence",
                "description": VAGUE[args.label]})["id"]
            job = call("POST", "/observability/v1/call-logs/evaluate_metrics/",
                       json={"call_logs": [ids[c] for c in chosen], "metrics": [metric], "confirm": True})
            while (state := call("GET", f"/api/v1/jobs/{job['job_id']}/"))["status"] not in ("completed", "failed", "stopped"):
                time.sleep(1)
            before = test_kappa(VAGUE[args.label])
            judged = {}
            for c in chosen:
                results = call("GET", f"/observability/v1/call-logs-external/{ids[c]}/")["evaluation"]["metrics"]
                judged[c] = results[0]["value"] if results and results[0]["error"] is None else None
            wrong = [c for c in chosen if judged[c] is not truth[c][args.label]]
            by_id = {v: k for k, v in ids.items()}
            print(f"model {args.model}; label {args.label}; {len(chosen)} calls to review, {len(test)} in the random "
                  f"test set ({sum(truth[c][args.label] for c in test)} pass); initial evaluation: {state['status']}, "
                  f"{len(wrong)} of {len(chosen)} disagree with the truth, {state['llm_calls']} judge calls")
            print()
            print(f"{'feedback':>8}  {'run':<16} {'test-set kappa before':<24} {'after':<24} {'labs verdict':<24} "
                  f"{'judge calls':>11} {'rewriter':>8}")
            labelled: set[str] = set()
            gepa_rows: list[dict[str, Any]] = []

            def vote(c: str, **extra: Any) -> None:
                label = truth[c][args.label]
                body = {"metric_id": metric, "feedback": reasons[c], "reviewer": "bench", **extra}
                if judged[c] is label:
                    body["vote"] = "agree"
                else:
                    body.update(vote="disagree", expected_value=label)
                call("POST", f"/observability/v1/call-logs-external/{ids[c]}/mark_metric_vote/", json=body)
                labelled.add(c)

            for size in [int(x) for x in args.feedback.split(",")]:
                # Half at random (an audit sample the product draws), half the mistakes a reviewer finds.
                audit_n = (size - len(labelled)) // 2
                if audit_n:
                    sample = call("POST", f"/api/v1/metrics/{metric}/audit_sample/", json={"size": audit_n, "seed": args.seed})
                    for entry in sample["calls"]:
                        vote(by_id[entry["call_log_id"]], source="random_audit", audit_sample_id=sample["id"])
                for c in [c for c in wrong if c not in labelled][: size - len(labelled)]:
                    vote(c, source="review_queue")
                variants: list[tuple[str, dict[str, Any]]] = [("labs", {}), ("few-shot only", {"generators": ["few-shot"]})]
                calls_of: dict[str, int] = {}
                for name, extra in variants:
                    started = call("POST", "/test_framework/metric-reviews/process_feedbacks/", json={
                        "metric_id": metric, "max_judge_calls": args.budget, "seed": args.seed, **extra})
                    while (run := call("GET", f"/api/v1/labs/{started['progress_id']}/"))["status"] not in ("completed", "failed"):
                        time.sleep(1)
                    if run["status"] != "completed" or not run.get("scored"):
                        print(f"{size:>8}  {name:<16} {run.get('message') or run.get('verdict', {}).get('explanation', '')}")
                        continue
                    after = test_kappa(run["improved_metric_description"])
                    calls_of[name] = run["progress"]["judge_calls"]
                    print(f"{size:>8}  {name:<16} {_fmt(before):<24} {_fmt(after):<24} {run['verdict']['verdict']:<24} "
                          f"{run['progress']['judge_calls']:>11} {run['progress']['rewriter_calls']:>8}")
                if gepa_race.available() is None:
                    gepa = _gepa(db, settings, project.id, metric, args)
                    gepa_rows.append({"size": size, **gepa})
                    after = test_kappa(gepa["criterion"])
                    ratio = (f"{calls_of['labs'] / gepa['judge_calls']:.2f}" if gepa["judge_calls"] and "labs" in calls_of
                             else "n/a")
                    print(f"{size:>8}  {'GEPA-light':<16} {_fmt(before):<24} {_fmt(after):<24} {'(no verdict)':<24} "
                          f"{gepa['judge_calls']:>11} {gepa['reflection_calls']:>8}   labs/GEPA judge calls {ratio}")
            if gepa_race.available() is not None:
                print(f"\nGEPA baseline: skipped ({gepa_race.available()}).")
            for row in gepa_rows:
                print(f"\nGEPA-light at {row['size']} labels: budget {row['budget']} metric calls (DSPy's auto='light'), "
                      f"{row['metric_calls']} used, {row['candidates']} candidates, {row['judge_calls']} judge and "
                      f"{row['reflection_calls']} reflection LM calls; criterion "
                      + ("changed" if row["changed"] else "unchanged (no accepted proposal)"))
    finally:
        runtime.stop()
        db.dispose()
    print(f"wall time {time.perf_counter() - t0:.0f} s; data in {tmp}")


if __name__ == "__main__":
    main()
