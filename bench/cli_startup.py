"""CLI start-up: how long `judgelab --help` and list commands take, against a bare interpreter.

    .venv/bin/python bench/cli_startup.py

Median of 7 runs each, in a fresh SQLite data directory; the target is under 1 s for --help and
the list commands on this 2-core machine.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
JUDGELAB = str(Path(sys.executable).with_name("judgelab"))
COMMANDS = [
    ("python -c pass (baseline)", [sys.executable, "-c", "pass"]),
    ("judgelab --help", [JUDGELAB, "--help"]),
    ("judgelab calls list --help", [JUDGELAB, "calls", "list", "--help"]),
    ("judgelab metrics list", [JUDGELAB, "metrics", "list"]),
    ("judgelab calls list", [JUDGELAB, "calls", "list"]),
]


def main() -> None:
    data = tempfile.mkdtemp(prefix="judgelab-startup-")
    env = {**os.environ, "JUDGELAB_DATA_DIR": data, "COLUMNS": "80"}
    subprocess.run([JUDGELAB, "keys", "create", "--project", "bench"], env=env, capture_output=True, check=True)
    print(f"{'command':<32} {'median s':>9} {'min s':>7}")
    for name, argv in COMMANDS:
        times = []
        for _ in range(7):
            t0 = time.perf_counter()
            subprocess.run(argv, env=env, capture_output=True, check=False)
            times.append(time.perf_counter() - t0)
        print(f"{name:<32} {statistics.median(times):>9.3f} {min(times):>7.3f}")


if __name__ == "__main__":
    main()
