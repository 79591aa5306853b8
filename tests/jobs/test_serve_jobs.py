"""`judgelab serve` runs jobs in its own process: nothing else to start for a first evaluation."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx2 as httpx

from judgelab.testing.fake_openai import FakeOpenAIServer
from tests.cli.test_serve import _free_port


def test_serve_evaluates_through_its_own_workers(tmp_path: Path, fake_model: FakeOpenAIServer) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUDGELAB_", "OPENAI_"))}
    env.update({"JUDGELAB_DATA_DIR": str(tmp_path / "data"), "JUDGELAB_MODEL": "openai/judge-1",
                "OPENAI_BASE_URL": fake_model.base_url, "OPENAI_API_KEY": "test"})
    proc = subprocess.Popen([sys.executable, "-m", "judgelab", "serve", "--port", str(port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path)
    try:
        assert proc.stdout is not None
        key = None
        deadline = time.monotonic() + 60
        while key is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            assert line or proc.poll() is None, "server exited early"
            if m := re.search(r"\b(jl_[A-Za-z0-9_\-]{20,})\b", line):
                key = m.group(1)
        assert key
        base, headers = f"http://127.0.0.1:{port}", {"Authorization": f"Bearer {key}"}
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        agent = httpx.post(f"{base}/api/v1/agents/", json={"name": "bot"}, headers=headers).json()["id"]
        call = httpx.post(f"{base}/observability/v1/observe/", headers=headers,
                          json={"agent": agent, "transcript": "User: please cancel my trip"}).json()["id"]
        metric = httpx.post(f"{base}/test_framework/v1/metrics/", headers=headers,
                            json={"name": "asks to cancel", "description": "Does the caller ask to cancel?"}).json()["id"]
        started = httpx.post(f"{base}/observability/v1/call-logs/evaluate_metrics/", headers=headers,
                             json={"call_logs": [call], "metrics": [metric]})
        assert started.status_code == 202, started.text
        job_url = f"{base}/api/v1/jobs/{started.json()['job_id']}/"
        while time.monotonic() < deadline:
            job = httpx.get(job_url, headers=headers).json()
            if job["status"] not in ("queued", "starting", "running"):
                break
            time.sleep(0.1)
        assert job["status"] == "completed" and job["llm_calls"] == 1, job
        result = httpx.get(f"{base}/observability/v1/call-logs-external/{call}/", headers=headers).json()
        assert result["evaluation"]["metrics"][0]["value"] is True
    finally:
        proc.terminate()
        proc.wait(20)
