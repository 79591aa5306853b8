"""`judgelab serve` as a user runs it: a real process, a real port, the key it prints on first start."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx2 as httpx


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_first_start_prints_a_working_key(tmp_path: Path) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("JUDGELAB_")}
    env["JUDGELAB_DATA_DIR"] = str(tmp_path / "data")
    proc = subprocess.Popen(
        [sys.executable, "-m", "judgelab", "serve", "--port", str(port)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path,
    )
    try:
        key = None
        deadline = time.monotonic() + 60
        assert proc.stdout is not None
        while key is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            assert line or proc.poll() is None, "server exited early"
            if m := re.search(r"\b(jl_[A-Za-z0-9_\-]{20,})\b", line):
                key = m.group(1)
        assert key, "no key printed"
        base = f"http://127.0.0.1:{port}"
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        headers = {"Authorization": f"Bearer {key}"}
        agent = httpx.post(f"{base}/api/v1/agents/", json={"name": "bot"}, headers=headers).json()["id"]
        r = httpx.post(f"{base}/observability/v1/observe", json={"agent": agent, "transcript": "User: hello"}, headers=headers)
        assert r.status_code == 201, r.text
        listed = httpx.get(f"{base}/observability/v1/call-logs-external", params={"search": "hello"}, headers=headers)
        assert listed.json()["count"] == 1
        assert (tmp_path / "data" / "judgelab.db").exists()
    finally:
        proc.terminate()
        proc.wait(10)
    # A second start finds a key already there, and makes and prints none.
    proc = subprocess.Popen(
        [sys.executable, "-m", "judgelab", "serve", "--port", str(port)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path,
    )
    try:
        assert proc.stdout is not None
        seen = []
        while not any("judgelab on http" in line for line in seen):
            line = proc.stdout.readline()
            assert line, "".join(seen)
            seen.append(line)
        assert not any("jl_" in line for line in seen)
    finally:
        proc.terminate()
        proc.wait(10)
