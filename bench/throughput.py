"""Evaluation throughput: durable jobs against a model with latency L and a concurrency limit C.

    .venv/bin/python bench/throughput.py                 # 2 000 evaluations, L = 200 ms, C = 32
    .venv/bin/python bench/throughput.py --evals 2000 --database-url postgresql://postgres@127.0.0.1:5432/test
    .venv/bin/python bench/throughput.py --only faults   # one scenario, for tuning

The fake model runs as its own process (`python -m judgelab.testing.fake_openai`), so this
process's CPU time is judgelab's alone: the job runtime (DBOS workflows, queue, a checkpoint per
chunk stage), the engine, the openai SDK and the database. Jobs go through the same path as
`POST /observability/v1/call-logs/evaluate_metrics/`: a job row, the dispatcher, chunks of calls
on the evaluation queue, results written in groups. The bound is C / L evaluations per second.

Scenarios, all measured in this run:
  1. clean: no faults;  1a. the same job over HTTP to a `judgelab serve` process;
  1b. two processes (this one and a `judgelab worker`), C/2 each;
  2. the same job again with nothing changed (must make 0 LLM calls);
  3. faults: 10 % of requests answered 429 or 500 (half each), force=True;
  4. engine overhead: zero latency, force=True; CPU seconds of this process per evaluation;
  5. naive baseline: one evaluation at a time, no job, no concurrency (a sample, extrapolated);
and the peers against the same fake model and calls (bench/peers.py): a bare asyncio loop over the
openai SDK (the client-side ceiling here; at zero latency, the SDK's own CPU per evaluation), and
Arize Phoenix evals (`pip install -e '.[bench]'`) with its defaults and with its limiter at C/L.
Each job is checked for lost and duplicated results: exactly one stored result per (call, metric).
Figures against a fake model prove mechanics only.
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

import peers  # noqa: E402 - bench/peers.py, beside this file

from judgelab.calls.files import parse_jsonl
from judgelab.calls.writer import import_payloads
from judgelab.config import Settings
from judgelab.db import Database, make_engine, migrate
from judgelab.db.models import Job, MetricResult
from judgelab.evaluation.group import evaluate_one
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

    def __init__(self, latency: float, concurrency: int, faults: dict[str, float] | None = None,
                 extra: list[str] | None = None) -> None:
        self.port = free_port()
        args = [sys.executable, "-m", "judgelab.testing.fake_openai", "--port", str(self.port),
                "--latency", str(latency), "--max-concurrency", str(concurrency), *(extra or [])]
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


def _cpu_of(pid: int) -> float:
    """User + system CPU seconds of another process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def through_serve(db: Database, url: str, jobs_url: str, schema: str, project_id: int, calls: list[int],
                  metric_id: int, latency: float, concurrency: int) -> dict[str, Any]:
    """The same job submitted over HTTP to a `judgelab serve` process, as a user would: its CPU is
    read from /proc, the wall time runs from the POST to the job's end as GET /api/v1/jobs/{id}/ says."""
    from judgelab.db.models import Project
    from judgelab.projects.service import create_api_key

    model = FakeModel(latency, concurrency)
    with db.session() as s:
        project = s.get(Project, project_id)
        assert project is not None
        key = create_api_key(s, project, name=f"bench {time.time_ns()}", admin=True).key
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "JUDGELAB_DATABASE_URL": url,
           "JUDGELAB_JOBS_DATABASE_URL": jobs_url, "JUDGELAB_JOBS_SCHEMA": schema, "JUDGELAB_MODEL": MODEL,
           "JUDGELAB_JUDGE_CONCURRENCY": str(concurrency), "JUDGELAB_EXECUTOR_ID": "bench-serve",
           "OPENAI_BASE_URL": model.root + "/v1", "OPENAI_API_KEY": "x"}
    server = subprocess.Popen([sys.executable, "-m", "judgelab", "serve", "--port", str(port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {key}"}
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/api/v1/jobs/", headers=headers, timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("judgelab serve did not start")
            time.sleep(0.2)
        time.sleep(1)  # a running server: its job runtime's queue threads are up
        cpu0, t0 = _cpu_of(server.pid), time.perf_counter()
        started = httpx.post(f"{base}/observability/v1/call-logs/evaluate_metrics/", headers=headers, timeout=60,
                             json={"call_logs": calls, "metrics": [metric_id], "confirm": True, "force": True})
        started.raise_for_status()
        job_id = started.json()["job_id"]
        while (job := httpx.get(f"{base}/api/v1/jobs/{job_id}/", headers=headers, timeout=10).json())["status"] not in FINAL:
            time.sleep(0.05)
        wall, cpu = time.perf_counter() - t0, _cpu_of(server.pid) - cpu0
        with db.session() as s:
            per_call = dict(s.execute(select(MetricResult.call_log_id, func.count()).where(MetricResult.job_id == job_id)
                                      .group_by(MetricResult.call_log_id)).all())
        return {**job, "wall": wall, "cpu": cpu, "lost": sum(1 for c in calls if c not in per_call),
                "duplicated": sum(k - 1 for k in per_call.values() if k > 1), "server": model.stats()}
    finally:
        server.terminate()
        server.wait(30)
        model.stop()


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
    parser.add_argument("--only", choices=("clean", "faults", "overhead"), default=None,
                        help="one scenario only (for tuning)")
    parser.add_argument("--phoenix-default-sample", type=int, default=400,
                        help="evaluations for Phoenix with its defaults (slow: a sample, its rate reported)")
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
        # A running server, not a starting one: let DBOS's queue threads (and any workers) come up.
        time.sleep(3 if workers else 1)
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

    if args.only:
        latency, faults = {"clean": (args.latency, None), "faults": (args.latency, {"429": 0.05, "500": 0.05}),
                           "overhead": (0.0, None)}[args.only]
        with_model(args.only, latency, faults, True)
        print(line(args.only, results[args.only], bound))
        print(f"   server: {results[args.only]['server']}")
        return
    with_model("clean", args.latency, None, False, rerun=True)
    results["serve"] = through_serve(db, url, jobs_url, schema, project_id, calls, metric_id, args.latency,
                                     args.concurrency)
    with_model("two processes", args.latency, None, True, workers=1)
    with_model("faults", args.latency, {"429": 0.05, "500": 0.05}, True)
    with_model("overhead", 0.0, None, True)
    model = FakeModel(args.latency, args.concurrency)
    sample = calls[: args.naive_sample]
    naive_wall = naive(db, project_id, sample, metric_id, model.root + "/v1")
    model.stop()
    naive_rate = len(sample) / naive_wall
    transcripts = [f"User: I want to change flight {i}.\nAgent: Sure, which date works for you?\nUser: Tomorrow "
                   f"morning please.\nAgent: Done, confirmation {i}." for i in range(args.evals)]
    peer: dict[str, dict[str, Any]] = {}
    for name, latency, run in (
        ("bare openai SDK loop", args.latency, lambda url: peers.bare_sdk(url, transcripts, args.concurrency)),
        ("bare SDK, zero latency", 0.0, lambda url: peers.bare_sdk(url, transcripts, args.concurrency)),
        ("Phoenix evals, limiter at C/L", args.latency,
         lambda url: peers.phoenix(url, transcripts, concurrency=args.concurrency, rate=bound)),
        ("Phoenix evals, defaults", args.latency,
         lambda url: peers.phoenix(url, transcripts[: args.phoenix_default_sample], concurrency=None, rate=None)),
    ):
        model = FakeModel(latency, args.concurrency)
        try:
            peer[name] = run(model.root + "/v1")
        finally:
            model.stop()

    print()
    print(line("1. clean (no faults)", results["clean"], bound))
    rerun = results["rerun"]
    print(line("2. same job again (cache)", rerun, bound))
    print(f"   LLM requests the server saw during the rerun: "
          f"{rerun['server']['requests'] - results['clean']['server']['requests']}")
    print(line("1a. clean, over HTTP to `serve`", results["serve"], bound))
    print("    (POST evaluate_metrics to a `judgelab serve` process, force=True; CPU is the server process's)")
    print(line("1b. clean, 2 processes, C/2 each", results["two processes"], bound))
    print(line("3. 10 % of requests 429 or 500", results["faults"], bound))
    print(f"   server: {results['faults']['server']}")
    over = results["overhead"]
    print(line("4. zero latency (engine overhead)", over, bound))
    print(f"   CPU time of this process per evaluation: {1000 * over['cpu'] / over['progress']['done']:.2f} ms "
          f"(runtime + engine + SDK + database; the fake model runs in another process)")
    print(f"5. naive loop, one at a time ({len(sample)} evals): {naive_rate:.1f} evals/s, "
          f"{100 * naive_rate / bound:.1f} % of C/L; a 2 000-evaluation job would take {args.evals / naive_rate:.0f} s")
    print()
    print("peers, same fake model, same calls, same machine, this run:")
    clean_rate = results["clean"]["progress"]["done"] / results["clean"]["wall"]
    for name, r in peer.items():
        if "missing" in r:
            print(f"   {name:<32} not run: {r['missing']}")
            continue
        rate = r["done"] / r["wall"]
        ratio = "" if "zero" in name else f"  judgelab / this = {clean_rate / rate:.2f}x"
        print(f"   {name:<32} {r['done']:>5} evals {r['wall']:7.2f} s {rate:8.1f} evals/s  "
              f"{100 * rate / bound:5.1f} % of C/L  failures {r['failures']}  "
              f"CPU {1000 * r['cpu'] / max(1, r['done']):.1f} ms/eval{ratio}")
    sdk = peer["bare SDK, zero latency"]
    own = 1000 * over["cpu"] / over["progress"]["done"] - 1000 * sdk["cpu"] / max(1, sdk["done"])
    print(f"   judgelab's own CPU per evaluation at zero latency, on top of the SDK's: {own:.2f} ms "
          f"(target <= 3 ms: {'met' if own <= 3 else 'NOT met'})")
    ceiling = peer["bare openai SDK loop"]["done"] / peer["bare openai SDK loop"]["wall"]
    print(f"   judgelab clean / client-side ceiling (bare SDK loop): {100 * clean_rate / ceiling:.1f} %")
    print("   (figures against a fake model prove mechanics only: no real provider is reachable here)")
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
