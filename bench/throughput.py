"""Evaluation throughput: durable jobs against a model with latency L and a concurrency limit C.

    .venv/bin/python bench/throughput.py                 # 2 000 evaluations, L = 200 ms, C = 32
    .venv/bin/python bench/throughput.py --evals 500 --database-url postgresql://postgres@127.0.0.1:5432/test

The fake model runs as its own process (`python -m judgelab.testing.fake_openai`), so this
process's CPU time is judgelab's alone: the job runtime (DBOS workflows, queue and step
checkpoints), the engine, the openai SDK and the database. Everything goes through the same path
as `POST /observability/v1/call-logs/evaluate_metrics/`: a job row, the dispatcher, one DBOS step
per evaluation. The bound is C / L evaluations per second (one request per evaluation).

Scenarios, all measured in this run:
  1. clean: no faults;
  2. the same job again with nothing changed (must make 0 LLM calls);
  3. faults: 10 % of requests answered 429 or 500 (half each), force=True;
  4. engine overhead: zero latency, force=True; CPU seconds of this process per evaluation;
  5. naive baseline: one evaluation at a time, no job, no concurrency (a sample, extrapolated).
Each job is checked for lost and duplicated results: exactly one stored result per (call, metric).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx2 as httpx
from sqlalchemy import func, select, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from judgelab.calls.files import parse_jsonl
from judgelab.calls.writer import import_payloads
from judgelab.config import Settings
from judgelab.db import Database, make_engine, migrate
from judgelab.db.models import Job, MetricResult
from judgelab.evaluation.service import evaluate_one
from judgelab.jobs.runtime import Runtime
from judgelab.jobs.service import FINAL, job_dict
from judgelab.jobs.submit import submit_evaluation
from judgelab.judges.providers.openai import OpenAIProvider
from judgelab.judges.registry import Judges
from judgelab.metrics.schemas import MetricCreate
from judgelab.metrics.service import create_metric
from judgelab.projects.service import create_agent, get_or_create_project

MODEL = "openai/bench-judge"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class FakeModel:
    """The fake model server in a child process."""

    def __init__(self, latency: float, concurrency: int, faults: dict[str, float] | None = None) -> None:
        self.port = free_port()
        args = [sys.executable, "-m", "judgelab.testing.fake_openai", "--port", str(self.port),
                "--latency", str(latency), "--max-concurrency", str(concurrency)]
        for kind, rate in (faults or {}).items():
            args += ["--fault", f"{kind}={rate}"]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(f"{self.root}/stats", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise RuntimeError("the fake model did not start") from None
                time.sleep(0.05)

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stats(self) -> dict[str, Any]:
        return dict(httpx.get(f"{self.root}/stats", timeout=5).json())

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def setup(url: str, n: int) -> tuple[Database, int, list[int], int]:
    engine = make_engine(url)
    migrate(engine)
    db = Database(engine)
    settings = Settings()
    with db.session() as s:
        project, _ = get_or_create_project(s, f"bench-{time.time_ns()}")
        agent = create_agent(s, project.id, "bench agent", "You are an airline support agent.")
        lines = "\n".join(
            '{"agent": %d, "call_id": "t%d", "transcript": "User: I want to change flight %d.\\nAgent: Sure, '
            'which date works for you?\\nUser: Tomorrow morning please.\\nAgent: Done, confirmation %d."}'
            % (agent.id, i, i, i) for i in range(n))
        import_payloads(s, project.id, parse_jsonl(lines), settings)
        metric = create_metric(s, project.id, MetricCreate(name="confirms the change",
                                                            description="Did the agent confirm the change?"))
        calls = [c for (c,) in s.execute(text("SELECT id FROM call_logs WHERE project_id = :p ORDER BY id"),
                                          {"p": project.id}).all()]
        return db, project.id, calls, metric.id


def run_job(db: Database, runtime: Runtime, project_id: int, calls: list[int], metric_id: int, force: bool) -> dict[str, Any]:
    cpu0, t0 = time.process_time(), time.perf_counter()
    with db.session() as s:
        job = submit_evaluation(s, project_id, [metric_id], call_ids=calls, filters=None, confirm=True, force=force,
                                default_model=MODEL, created_by="bench").job
        job_id = job.id
    runtime.wake()
    while True:  # status only: the progress aggregate is for people, not a tight loop
        with db.session() as s:
            if s.scalar(select(Job.status).where(Job.id == job_id)) in FINAL:
                info = job_dict(s, s.get(Job, job_id))  # type: ignore[arg-type]
                break
        time.sleep(0.05)
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    with db.session() as s:
        per_call = s.execute(select(MetricResult.call_log_id, func.count()).where(MetricResult.job_id == job_id)
                             .group_by(MetricResult.call_log_id)).all()
    stored = {c: k for c, k in per_call}
    cached = info["progress"]["cache_hits"]
    lost = sum(1 for c in calls if c not in stored) if not cached else len(calls) - info["progress"]["done"]
    dup = sum(k - 1 for k in stored.values() if k > 1)
    return {**info, "wall": wall, "cpu": cpu, "lost": lost, "duplicated": dup}


def naive(db: Database, project_id: int, calls: list[int], metric_id: int, base_url: str) -> float:
    """One evaluation at a time: the loop a first version would write."""

    async def go() -> float:
        judges = Judges(Settings(judge_concurrency=1), {"openai": lambda: OpenAIProvider(base_url=base_url, api_key="x")})
        t0 = time.perf_counter()
        for c in calls:
            await evaluate_one(db, project_id, c, metric_id, judges.client_for, MODEL, force=True)
        await judges.aclose()
        return time.perf_counter() - t0

    return asyncio.run(go())


def line(name: str, r: dict[str, Any], bound: float) -> str:
    rate = r["progress"]["done"] / r["wall"]
    return (f"{name:<34} {r['status']:<10} {r['progress']['done']:>5} evals {r['wall']:7.2f} s "
            f"{rate:8.1f} evals/s  {100 * rate / bound:5.1f} % of C/L  LLM calls {r['llm_calls']:>5}  "
            f"errors {r['progress']['errors']}  lost {r['lost']}  dup {r['duplicated']}  "
            f"CPU {1000 * r['cpu'] / max(1, r['progress']['done']):.1f} ms/eval")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--evals", type=int, default=2000)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--naive-sample", type=int, default=25)
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    parser.add_argument("--chunk-size", type=int, default=Settings().job_chunk_size)
    parser.add_argument("--worker-chunks", type=int, default=Settings().worker_chunks)
    parser.add_argument("--only-clean", action="store_true", help="scenario 1 only (for tuning)")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="judgelab-bench-"))
    url = args.database_url or f"sqlite:///{tmp / 'bench.db'}"
    jobs_url = args.database_url or f"sqlite:///{tmp / 'bench-jobs.db'}"
    db, project_id, calls, metric_id = setup(url, args.evals)
    bound = args.concurrency / args.latency
    print(f"{args.evals} evaluations (1 metric x {args.evals} calls), L = {args.latency * 1000:.0f} ms, "
          f"C = {args.concurrency}: bound C/L = {bound:.1f} evals/s; database {url.split(':')[0]}; "
          f"{os.cpu_count()} CPUs")
    settings = Settings(model=MODEL, judge_concurrency=args.concurrency, job_chunk_size=args.chunk_size,
                        worker_chunks=args.worker_chunks)
    print(f"chunks of {args.chunk_size} calls, {args.worker_chunks} chunks at once")
    results: dict[str, dict[str, Any]] = {}

    schema = f"dbos_bench_{os.getpid()}"

    def with_model(name: str, latency: float, faults: dict[str, float] | None, force: bool, rerun: bool = False,
                   workers: int = 0) -> None:
        model = FakeModel(latency, args.concurrency, faults)
        # The provider limit is per process: processes share C between them.
        share = settings.model_copy(update={"judge_concurrency": args.concurrency // (workers + 1)})
        judges = lambda: Judges(share, {"openai": lambda: OpenAIProvider(base_url=model.root + "/v1", api_key="x")})
        runtime = Runtime(db, share, executor_id=f"bench-{name}", judges=judges, system_url=jobs_url,
                          system_schema=schema).start()
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "JUDGELAB_DATABASE_URL": url,
               "JUDGELAB_JOBS_DATABASE_URL": jobs_url, "JUDGELAB_JOBS_SCHEMA": schema, "JUDGELAB_MODEL": MODEL,
               "JUDGELAB_JUDGE_CONCURRENCY": str(share.judge_concurrency),
               "JUDGELAB_JOB_CHUNK_SIZE": str(settings.job_chunk_size),
               "JUDGELAB_WORKER_CHUNKS": str(settings.worker_chunks),
               "OPENAI_BASE_URL": model.root + "/v1", "OPENAI_API_KEY": "x"}
        helpers = [subprocess.Popen([sys.executable, "-m", "judgelab", "worker", "--executor-id", f"bench-{name}-{i}"],
                                    env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for i in range(workers)]
        time.sleep(3 if workers else 0)  # let the workers launch before the job is queued
        try:
            results[name] = run_job(db, runtime, project_id, calls, metric_id, force)
            results[name]["server"] = model.stats()
            if rerun:
                results["rerun"] = run_job(db, runtime, project_id, calls, metric_id, False)
                results["rerun"]["server"] = model.stats()
        finally:
            for helper in helpers:
                helper.terminate()
                helper.wait(30)
            runtime.stop()
            model.stop()

    with_model("clean", args.latency, None, False, rerun=not args.only_clean)
    if args.only_clean:
        print(line("1. clean (no faults)", results["clean"], bound))
        return
    with_model("two processes", args.latency, None, True, workers=1)
    with_model("faults", args.latency, {"429": 0.05, "500": 0.05}, True)
    with_model("overhead", 0.0, None, True)
    model = FakeModel(args.latency, args.concurrency)
    sample = calls[: args.naive_sample]
    naive_wall = naive(db, project_id, sample, metric_id, model.root + "/v1")
    model.stop()
    naive_rate = len(sample) / naive_wall

    print()
    print(line("1. clean (no faults)", results["clean"], bound))
    rerun = results["rerun"]
    print(line("2. same job again (cache)", rerun, bound))
    print(f"   LLM requests the server saw during the rerun: "
          f"{rerun['server']['requests'] - results['clean']['server']['requests']}")
    print(line("1b. clean, 2 processes, C/2 each", results["two processes"], bound))
    print(line("3. 10 % of requests 429 or 500", results["faults"], bound))
    print(f"   server: {results['faults']['server']}")
    over = results["overhead"]
    print(line("4. zero latency (engine overhead)", over, bound))
    print(f"   CPU time of this process per evaluation: {1000 * over['cpu'] / over['progress']['done']:.2f} ms "
          f"(runtime + engine + SDK + database; the fake model runs in another process)")
    print(f"5. naive loop, one at a time ({len(sample)} evals): {naive_rate:.1f} evals/s, "
          f"{100 * naive_rate / bound:.1f} % of C/L; a 2 000-evaluation job would take {args.evals / naive_rate:.0f} s")
    clean_rate = results["clean"]["progress"]["done"] / results["clean"]["wall"]
    fault_rate = results["faults"]["progress"]["done"] / results["faults"]["wall"]
    print()
    print(f"jobs vs naive: {clean_rate / naive_rate:.1f}x")
    two_rate = results["two processes"]["progress"]["done"] / results["two processes"]["wall"]
    best = max(clean_rate, two_rate)
    print(f"targets: clean >= 95 % of C/L: {100 * clean_rate / bound:.1f} % with one process, "
          f"{100 * two_rate / bound:.1f} % with two  {'met' if best >= 0.95 * bound else 'NOT met'}; faults >= 80 %: {100 * fault_rate / bound:.1f} %  "
          f"{'met' if fault_rate >= 0.8 * bound else 'NOT met'}; rerun LLM calls = {rerun['llm_calls']} "
          f"{'met' if rerun['llm_calls'] == 0 else 'NOT met'}; lost/dup = "
          f"{sum(r['lost'] + r['duplicated'] for r in results.values())}")
    db.dispose()


if __name__ == "__main__":
    main()
