"""Validation and conversion runs, like labs runs, survive a SIGKILLed worker without repaying judge calls."""

from __future__ import annotations

import time
from typing import Any

import pytest

from judgelab.testing.fake_openai import FakeOpenAIServer
from tests.conftest import Api
from tests.jobs.test_kill_resume import _worker, kill_when
from tests.labs.test_labs_run import PARAPHRASE_RULE, STRICT, labelled, model


def _poll_run(api: Api, path: str, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = api.get(path).json()
        if state["status"] in ("completed", "failed"):
            return dict(state)
        time.sleep(0.1)
    raise AssertionError(f"{path} did not finish")


@pytest.mark.parametrize("kind", ["validation", "conversion"])
def test_a_killed_run_resumes_without_repaying(kind: str, api: Api, db: Any, system_db: tuple[str, str],
                                               fake_model: FakeOpenAIServer, tmp_path: Any) -> None:
    fake_model.rule = model
    metric, _calls = labelled(api, db)
    fake_model.latency = 0.15
    if kind == "validation":
        started = api.post(f"/api/v1/metrics/{metric}/validate/", json={"description": STRICT + PARAPHRASE_RULE, "sample": 0})
        path = started.json()["progress_url"]
    else:
        started = api.post(f"/api/v1/metrics/{metric}/to_custom_code/", json={})
        path = started.json()["progress_url"]
    assert started.status_code == 202, started.text
    kill_when(_worker(db, system_db, fake_model, tmp_path), lambda: fake_model.stats.answered >= 6)
    paid_before = fake_model.stats.requests
    worker = _worker(db, system_db, fake_model, tmp_path)
    try:
        run = _poll_run(api, path)
    finally:
        worker.terminate()
        worker.wait(20)
    assert run["status"] == "completed", run
    needed = run["progress"]["judge_calls"]
    repaid = fake_model.stats.requests - needed
    # Paid twice: only what was in flight at the kill (2 requests at a time here) or answered but not yet
    # checkpointed; everything else paid before the kill was reused.
    assert paid_before >= 6 and 0 <= repaid <= 4 and paid_before - repaid >= 4, (paid_before, needed, fake_model.stats.requests)
    if kind == "validation":
        assert run["summary"]["fixed"] == 6 and run["summary"]["regressed"] == 0
