"""Half price for bulk work: the same evaluation job live and through the provider's batch API.

    .venv/bin/python bench/batch.py                 # 2 000 evaluations, a priced model, batch delay 2 s

Both jobs run through the same path as `POST /observability/v1/call-logs/evaluate_metrics/`
(`"batch": true` for the second), against the fake model server in its own process: the live job
over /v1/chat/completions, the batch job over /v1/files + /v1/batches (the server answers a batch
after --batch-delay seconds). Printed: each job's cost from judgelab's ledger, the estimate's two
prices, how many provider batches and live requests each made, lost and duplicated results.
Figures against a fake model prove mechanics only (real batches take minutes to hours).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import throughput as tp  # noqa: E402 - bench/throughput.py, beside this file

from judgelab.config import Settings  # noqa: E402
from judgelab.db.models import Metric  # noqa: E402
from judgelab.evaluation.estimate import estimate  # noqa: E402
from judgelab.jobs.runtime import Runtime  # noqa: E402
from judgelab.judges.providers.openai import OpenAIProvider  # noqa: E402
from judgelab.judges.registry import Judges  # noqa: E402

PRICED = "openai/gpt-4.1-mini"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--evals", type=int, default=2000)
    parser.add_argument("--batch-delay", type=float, default=2.0)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="judgelab-batch-"))
    db, project_id, calls, metric_id = tp.setup(f"sqlite:///{tmp / 'bench.db'}", args.evals)
    with db.session() as s:
        metric = s.get(Metric, metric_id)
        assert metric is not None
        metric.current.model = PRICED  # a model with a list price, so the ledger has money in it
        guess = estimate(s, project_id, [metric_id], PRICED, call_ids=calls, force=True)
    print(f"{args.evals} evaluations of {PRICED}; the estimate: ${guess.cost_usd:.4f} live, "
          f"${guess.batch_cost_usd:.4f} through the batch API")
    model = tp.FakeModel(0.05, 32, extra=["--batch-delay", str(args.batch_delay)])
    root = model.root
    settings = Settings(model=PRICED, judge_concurrency=32, batch_poll_seconds=0.5, batch_window_seconds=0.5)
    runtime = Runtime(db, settings, executor_id="bench-batch", system_url=f"sqlite:///{tmp / 'jobs.db'}",
                      system_schema="dbos",
                      judges=lambda: Judges(settings, {"openai": lambda: OpenAIProvider(base_url=root + "/v1",
                                                                                        api_key="x")})).start()
    time.sleep(1)
    results: dict[str, dict[str, Any]] = {}
    try:
        for name, batch in (("live", False), ("batch", True)):
            before = model.stats()["requests"]
            results[name] = _run(db, runtime, project_id, calls, metric_id, batch)
            results[name]["live_requests"] = model.stats()["requests"] - before
    finally:
        runtime.stop()
        model.stop()
    for name, r in results.items():
        batches = r.get("batches") or []
        print(f"{name:<6} {r['status']:<10} {r['progress']['done']:>5} evals {r['wall']:7.2f} s  cost ${r['cost_usd']:.4f}  "
              f"live requests {r['live_requests']:>5}  provider batches {len(batches)} "
              f"({sum(b['requests'] for b in batches)} requests)  errors {r['progress']['errors']}  "
              f"lost {r['lost']}  dup {r['duplicated']}")
    live, batch = results["live"]["cost_usd"], results["batch"]["cost_usd"]
    print(f"batch / live cost: {batch / live:.3f} (the providers bill batches at 0.5)")
    print("(figures against a fake model prove mechanics only: no real provider is reachable here)")
    db.dispose()


def _run(db: Any, runtime: Runtime, project_id: int, calls: list[int], metric_id: int, batch: bool) -> dict[str, Any]:
    from sqlalchemy import func, select

    from judgelab.db.models import Job, MetricResult
    from judgelab.jobs.service import FINAL, job_dict
    from judgelab.jobs.submit import submit_evaluation

    t0 = time.perf_counter()
    with db.session() as s:
        job_id = submit_evaluation(s, project_id, [metric_id], call_ids=calls, filters=None, confirm=True, force=True,
                                   default_model=PRICED, created_by="bench", batch=batch).job.id
    runtime.wake()
    while True:
        with db.session() as s:
            if s.scalar(select(Job.status).where(Job.id == job_id)) in FINAL:
                info = job_dict(s, s.get(Job, job_id))  # type: ignore[arg-type]
                per_call = dict(s.execute(select(MetricResult.call_log_id, func.count())
                                          .where(MetricResult.job_id == job_id)
                                          .group_by(MetricResult.call_log_id)).all())
                break
        time.sleep(0.1)
    return {**info, "wall": time.perf_counter() - t0, "lost": sum(1 for c in calls if c not in per_call),
            "duplicated": sum(k - 1 for k in per_call.values() if k > 1)}


if __name__ == "__main__":
    main()
