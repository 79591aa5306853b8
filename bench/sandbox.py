"""The custom_code sandbox's start-up cost per evaluation, bubblewrap against the plain process
backend and against no sandbox at all, measured in the same run.

    .venv/bin/python bench/sandbox.py [--runs 40]

Each run evaluates the same trivial metric (so the figure is the sandbox's own overhead: process
start, namespaces, binds, seccomp, the protocol), one at a time and then 8 at once under the cap.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from judgelab.evaluation.sandbox import Gate, Limits, Sandbox, run_custom_code
from judgelab.evaluation.sandbox.backends import BwrapBackend, ProcessBackend

CODE = "_result = len(data['transcript']) > 3\n_explanation = 'counted'"
DATA = {"transcript": "Agent: hello\nUser: I want a refund"}


def inline() -> None:
    env = {"data": DATA}
    exec(compile(CODE, "<metric>", "exec"), env)


async def one(box: Sandbox) -> float:
    start = time.perf_counter()
    out = await run_custom_code(CODE, DATA, sandbox=box)
    assert out.error is None, out.error
    return time.perf_counter() - start


async def measure(box: Sandbox, runs: int) -> tuple[list[float], float]:
    await one(box)  # warm: the first bwrap run probes it and resolves the binds once per process
    serial = [await one(box) for _ in range(runs)]
    start = time.perf_counter()
    await asyncio.gather(*(one(box) for _ in range(runs)))
    return serial, (time.perf_counter() - start) / runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=40)
    args = parser.parse_args()
    start = time.perf_counter()
    for _ in range(1000):
        inline()
    baseline_ms = (time.perf_counter() - start) / 1000 * 1000
    rows = []
    for backend in (ProcessBackend(), BwrapBackend()):
        problem = backend.problem()
        if problem:
            print(f"{backend.name}: not available ({problem})")
            continue
        box = Sandbox(backend, Limits(), Gate(8))
        serial, parallel = asyncio.run(measure(box, args.runs))
        rows.append((backend.name, statistics.median(serial) * 1000, statistics.quantiles(serial, n=20)[-1] * 1000,
                     parallel * 1000))
    print(f"custom_code start-up per evaluation ({args.runs} runs each, this machine):")
    print(f"  {'backend':<10} {'median ms':>10} {'p95 ms':>8} {'8 at once, ms/eval':>20}")
    print(f"  {'none':<10} {baseline_ms:>10.3f} {'':>8} {'':>20}   (exec in-process: no isolation at all)")
    for name, median, p95, parallel in rows:
        print(f"  {name:<10} {median:>10.1f} {p95:>8.1f} {parallel:>20.1f}")
    if len(rows) == 2:
        print(f"  bwrap / process: {rows[1][1] / rows[0][1]:.2f}x; bubblewrap adds {rows[1][1] - rows[0][1]:.1f} ms per evaluation")


if __name__ == "__main__":
    main()
