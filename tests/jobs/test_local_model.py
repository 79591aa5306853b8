"""One job judged by a real model: SmolLM2-135M through llama-cpp-python (the `local` extra).

The model is far too small to judge well; this proves the real path (prompt, grammar-constrained
JSON, verdict parsing, storage) works, not that the verdicts are right.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from judgelab.judges.providers.local import local_available
from tests.conftest import Api
from tests.jobs.conftest import RuntimeFactory
from tests.jobs.test_jobs import wait_for

if local_available() is not None and os.environ.get("JUDGELAB_REQUIRE_LOCAL_MODEL"):
    raise RuntimeError(f"JUDGELAB_REQUIRE_LOCAL_MODEL is set but {local_available()}")
pytestmark = pytest.mark.skipif(local_available() is not None, reason=str(local_available()))


def test_a_job_judged_by_smollm2(api: Api, start_runtime: RuntimeFactory, settings: Any) -> None:
    start_runtime(settings)
    agent = api.agent()
    calls = [api.call(agent, "l1", "I want to cancel my booking, please.")["id"],
             api.call(agent, "l2", "Can I change my seat to a window seat?")["id"]]
    metrics = [
        api.metric("asks to cancel", description="Does the caller ask to cancel?", model="local/smollm2")["id"],
        api.metric("intent", description="What does the caller want?", eval_type="enum",
                   enum_values=["cancel", "change", "other"], model="local/smollm2")["id"],
        api.metric("politeness", description="How polite is the agent, from 1 to 5?", eval_type="numeric",
                   model="local/smollm2")["id"],
    ]
    started = api.post("/observability/v1/call-logs/evaluate_metrics/", json={"call_logs": calls, "metrics": metrics})
    job = wait_for(api, started.json()["job_id"], timeout=240)
    assert job["status"] == "completed" and job["progress"]["done"] == 6, job
    assert job["llm_calls"] >= 6 and job["input_tokens"] > 0
    for call in calls:
        results = {r["name"]: r for r in api.get(f"/observability/v1/call-logs-external/{call}/").json()["evaluation"]["metrics"]}
        assert results["asks to cancel"]["model"] == "local/smollm2"
        # Each result is a valid verdict of its type, or an explicit error: never anything else.
        for name, ok in (("asks to cancel", lambda v: v in (True, False, None)),
                         ("intent", lambda v: v in ("cancel", "change", "other", None)),
                         ("politeness", lambda v: v is None or isinstance(v, (int, float)))):
            assert results[name]["error"] or ok(results[name]["value"]), results[name]
