"""Store benchmark: bulk import and list / filter / search latency, SQLite and PostgreSQL side by side.

The 200 airline calls are imported last, so they are the newest: unfiltered pages show them
(about 27 KB of JSON per call, with the agent's 6 KB policy); agent-filtered pages show synthetic
calls (about 13 KB each). Response sizes are printed beside the latencies, which include the
client reading the whole response.

    .venv/bin/python bench/store.py            # 100 000 synthetic calls + the 200 airline calls
    .venv/bin/python bench/store.py --calls 20000

Imports go through the same path as `POST /api/v1/call-logs/import/` and `judgelab import`
(validation, transcript rendering, hashing, upsert, full-text index). Queries go through the HTTP
app (FastAPI in-process), so the figures include routing, auth and JSON encoding. Baselines are
measured in the same run: a naive one-call-per-transaction ORM insert, and an unindexed
LIKE scan in place of the full-text index.
"""

from __future__ import annotations

import argparse
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx2 as httpx
import orjson
from sqlalchemy import func, select, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from judgelab.calls.files import parse_jsonl, read_calls
from judgelab.calls.ingest import prepare_call
from judgelab.calls.writer import import_payloads, upsert_calls
from judgelab.config import Settings
from judgelab.db import Database, make_engine, migrate
from judgelab.db.models import CallLog
from judgelab.projects.service import (
    create_agent,
    create_api_key,
    get_or_create_project,
)

AIRLINE = ROOT / "src" / "judgelab" / "demo" / "data" / "tau-bench-airline.json.gz"  # shipped, MIT
PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
WORDS = ["flight", "booking", "reservation", "cancel", "change", "refund", "baggage", "seat", "upgrade", "economy", "business", "basic", "passenger", "payment", "credit", "card", "certificate", "gift", "insurance", "delay", "compensation", "airport", "gate", "confirm", "number", "date", "time", "tomorrow", "morning", "evening", "please", "thanks", "sorry", "help", "check", "policy", "membership", "gold", "silver", "regular", "total", "price", "fee", "charge", "account", "name", "birthday", "address", "email", "phone", "verify", "identity", "details", "option", "direct", "stopover", "return", "origin", "destination", "transfer", "agent"]
RARE = "zeppelin"  # in 1 call out of 1000


def synthetic_calls(n: int, agents: list[str], seed: int = 7) -> Iterator[dict[str, Any]]:
    """Calls shaped like real support calls: ~20 turns, ~3 KB of text, tool calls, metadata."""
    rng = random.Random(seed)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    for i in range(n):
        turns, t = [], 0.0
        for k in range(rng.randint(12, 28)):
            role = "agent" if k % 2 == 0 else "user"
            words = [rng.choice(WORDS) for _ in range(rng.randint(8, 30))]
            if i % 1000 == 0 and k == 3:
                words.append(RARE)
            dur = len(words) * 0.35
            turns.append({"role": role, "content": " ".join(words).capitalize() + ".", "start_time": round(t, 2), "end_time": round(t + dur, 2)})
            t += dur + rng.uniform(0.2, 1.5)
            if role == "agent" and rng.random() < 0.15:
                turns.append({"role": "tool_call", "content": f"lookup_reservation({{\"id\": \"R{i:06d}\"}})", "start_time": round(t, 2), "end_time": round(t, 2)})
        yield {
            "agent": agents[i % len(agents)],
            "call_id": f"syn-{i}",
            "timestamp": (start + timedelta(seconds=i * 60)).isoformat(),
            "transcript_json": turns,
            "call_ended_reason": rng.choice(["customer-ended-call", "assistant-ended-call", "silence-timeout"]),
            "metadata": {"queue": rng.choice(["sales", "support", "billing"]), "csat": rng.randint(1, 5)},
            "dynamic_variables": {"customer_name": f"Customer {i}"},
        }


def open_backend(name: str, tmp: Path) -> tuple[Database, str, Callable[[], None]] | None:
    if name == "sqlite":
        url = f"sqlite:///{tmp / 'bench.db'}"
        engine = make_engine(url)
        migrate(engine)
        return Database(engine), url, lambda: None
    try:
        admin = make_engine(PG_URL, connect_args={"connect_timeout": 3})
        schema = f"jlbench_{uuid.uuid4().hex[:10]}"
        with admin.begin() as conn:
            conn.execute(text(f"CREATE SCHEMA {schema}"))
    except Exception as exc:  # noqa: BLE001
        print(f"  (PostgreSQL skipped: {str(exc).splitlines()[0]})")
        return None
    engine = make_engine(PG_URL, connect_args={"options": f"-csearch_path={schema}"})
    migrate(engine)

    def drop() -> None:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()

    return Database(engine), f"{PG_URL}?options=-csearch_path%3D{schema}", drop


def bulk_import(db: Database, settings: Settings, project_id: int, payloads: Iterator[dict[str, Any]], batch: int = 5000) -> tuple[int, float]:
    """Import JSONL text in requests of `batch` lines through the import endpoint's own code path
    (parse, validate, write, commit). Generating the synthetic payloads is not timed."""
    n, spent = 0, 0.0
    chunk: list[str] = []

    def flush() -> float:
        t0 = time.perf_counter()
        with db.session() as s:
            import_payloads(s, project_id, parse_jsonl("\n".join(chunk)), settings)
        return time.perf_counter() - t0

    for p in payloads:
        chunk.append(orjson.dumps(p).decode())
        if len(chunk) == batch:
            spent += flush()
            n += len(chunk)
            chunk = []
    if chunk:
        spent += flush()
        n += len(chunk)
    return n, spent


def naive_import(db: Database, settings: Settings, project_id: int, agent_id: int, payloads: list[dict[str, Any]]) -> float:
    """Baseline: validate, then one ORM object and one commit per call (what a first draft does)."""
    started = time.perf_counter()
    for p in payloads:
        prep = prepare_call(p, settings)
        with db.session() as s:
            v = prep.values
            s.add(CallLog(project_id=project_id, agent_id=agent_id, call_id=prep.call_id, timestamp=v["timestamp"],
                          transcript=v["transcript"], transcript_json=v["transcript_json"], meta=v["meta"],
                          dynamic_variables=v["dynamic_variables"], duration=v.get("duration"), content_hash="x"))
    return time.perf_counter() - started


class LiveServer:
    """`uvicorn` in its own process on a loopback port: timings include a real HTTP round trip,
    and the client does not share the server's interpreter."""

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url

    def __enter__(self) -> str:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        env = {**os.environ, "JUDGELAB_DATABASE_URL": self.database_url, "PYTHONPATH": str(ROOT / "src")}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--factory", "judgelab.api.app:create_app", "--host", "127.0.0.1",
             "--port", str(port), "--log-level", "warning", "--no-access-log"],
            env=env,
        )
        base = f"http://127.0.0.1:{port}"
        for _ in range(300):
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}")
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    return base
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError("server did not start")

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def timed(client: Any, headers: dict[str, str], url: str, params: dict[str, Any], reps: int) -> tuple[float, float, int, int]:
    samples, count, size = [], -1, 0
    client.get(url, params=params, headers=headers)  # warm
    for _ in range(reps):
        t0 = time.perf_counter()
        r = client.get(url, params=params, headers=headers)
        samples.append((time.perf_counter() - t0) * 1000)
        assert r.status_code == 200, r.text
        count, size = r.json()["count"], len(r.content)
    samples.sort()
    return statistics.median(samples), samples[int(0.95 * (len(samples) - 1))], count, size


def run_backend(name: str, n_calls: int, reps: int) -> dict[str, Any] | None:
    tmp = Path(tempfile.mkdtemp(prefix=f"jlbench-{name}-"))
    opened = open_backend(name, tmp)
    if opened is None:
        return None
    db, database_url, cleanup = opened
    settings = Settings(data_dir=tmp)
    out: dict[str, Any] = {}
    try:
        with db.session() as s:
            project, _ = get_or_create_project(s, "bench")
            key = create_api_key(s, project).key
            agent_ids = [create_agent(s, project.id, f"agent-{k}").id for k in range(5)]
            base_agent = create_agent(s, project.id, "baseline").id
            project_id = project.id
        agents = [f"agent-{k}" for k in range(5)]
        print(f"[{name}] importing {n_calls} synthetic calls ...", flush=True)
        n, secs = bulk_import(db, settings, project_id, synthetic_calls(n_calls, agents))
        out["import_calls"], out["import_s"] = n, secs
        sample = [dict(p, call_id=f"naive-{i}", agent=base_agent) for i, p in enumerate(synthetic_calls(1000, agents, seed=99))]
        out["naive_s_per_call"] = naive_import(db, settings, project_id, base_agent, sample) / len(sample)
        if AIRLINE.exists():
            _fmt, payloads, _ = read_calls(AIRLINE)
            t0 = time.perf_counter()
            prepared = [prepare_call(p, settings, line=i) for i, p in payloads]
            with db.session() as s:
                upsert_calls(s, project_id, prepared, default_agent="airline", create_missing_agents=True)
            out["airline_s"] = time.perf_counter() - t0
        with db.session() as s:
            out["total_calls"] = s.scalar(select(func.count()).select_from(CallLog))
            out["avg_chars"] = s.scalar(select(func.avg(func.length(CallLog.transcript))))
        # Steady state, as autovacuum leaves a table some time after a bulk load (the visibility map
        # set, so counts can be index-only scans) and as SQLite's `PRAGMA optimize` after imports does.
        if name == "postgresql":
            with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text("VACUUM ANALYZE call_logs"))
        else:
            with db.engine.begin() as conn:
                conn.execute(text("ANALYZE"))

        server = LiveServer(database_url)
        base = server.__enter__()
        client = httpx.Client(base_url=base, timeout=60)
        headers = {"Authorization": f"Bearer {key}"}
        url = "/observability/v1/call-logs-external/"
        queries = {
            "list, page 1 (50)": {},
            "list, page_size=200": {"page_size": 200},
            "count only (page_size=1)": {"page_size": 1},
            "filter agent": {"agent": agent_ids[2]},
            "filter agent + time window": {"agent": agent_ids[1], "timestamp__gte": "2024-02-01", "timestamp__lte": "2024-02-03"},
            "list, page 100": {"page": 100},
            "search rare word": {"search": RARE},
            "search two common words": {"search": "refund insurance"},
            "search airline phrase": {"search": "cancel reservation certificate"},
        }
        out["queries"] = {label: timed(client, headers, url, params, reps) for label, params in queries.items()}
        # Baseline for search: the same rare word through an unindexed scan.
        with db.engine.connect() as conn:
            t0 = time.perf_counter()
            for _ in range(3):
                conn.execute(select(func.count()).select_from(CallLog).where(CallLog.transcript.like(f"%{RARE}%"))).scalar()
            out["scan_ms"] = (time.perf_counter() - t0) / 3 * 1000
        client.close()
        server.__exit__()
    finally:
        db.dispose()
        cleanup()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--reps", type=int, default=40)
    parser.add_argument("--backends", default="sqlite,postgresql")
    args = parser.parse_args()
    results = {b: run_backend(b, args.calls, args.reps) for b in args.backends.split(",")}
    names = [b for b, r in results.items() if r]
    print("\n=== judgelab store benchmark ===")
    print(f"{'':34}" + "".join(f"{b:>22}" for b in names))

    def row(label: str, fmt: Callable[[dict[str, Any]], str]) -> None:
        print(f"{label:34}" + "".join(f"{fmt(results[b]):>22}" for b in names))

    row("calls stored", lambda r: f"{r['total_calls']:,}")
    row("avg transcript chars", lambda r: f"{r['avg_chars']:,.0f}")
    row("bulk import calls/s", lambda r: f"{r['import_calls'] / r['import_s']:,.0f}")
    row("naive import calls/s (baseline)", lambda r: f"{1 / r['naive_s_per_call']:,.0f}")
    row("  ratio bulk / naive", lambda r: f"{(r['import_calls'] / r['import_s']) * r['naive_s_per_call']:.1f}x")
    row("  ratio to target 2000/s", lambda r: f"{r['import_calls'] / r['import_s'] / 2000:.2f}x")
    if all("airline_s" in results[b] for b in names):
        row("airline 200 calls import (s)", lambda r: f"{r['airline_s']:.2f}")
    print(f"\n{'query: p50 / p95 ms (count; KB)':34}" + "".join(f"{b:>30}" for b in names))
    for label in results[names[0]]["queries"]:
        print(f"{label:34}" + "".join(
            "{:>30}".format("{:.1f} / {:.1f} ({:,}; {:,})".format(*results[b]["queries"][label][:3], results[b]["queries"][label][3] // 1024))
            for b in names))
    worst = {b: max(q[1] for lbl, q in results[b]["queries"].items() if not lbl.startswith("search")) for b in names}
    row("worst list/filter p95 ms", lambda r: f"{max(v[1] for k, v in r['queries'].items() if not k.startswith('search')):.1f}")
    row("  ratio to target 50 ms", lambda r: f"{max(v[1] for k, v in r['queries'].items() if not k.startswith('search')) / 50:.2f}x")
    row("rare word: LIKE scan ms (baseline)", lambda r: f"{r['scan_ms']:.0f}")
    row("  ratio scan / full-text p50", lambda r: f"{r['scan_ms'] / r['queries']['search rare word'][0]:.0f}x")
    ok = all(results[b]["import_calls"] / results[b]["import_s"] >= 2000 for b in names if b == "sqlite") and all(w < 50 for w in worst.values())
    print(f"\ntargets (import >= 2000 calls/s on SQLite; list/filter p95 < 50 ms): {'met' if ok else 'NOT met'}")


if __name__ == "__main__":
    main()
