"""Every eval type and every trigger kind, end to end: API, job runtime, the real openai SDK,
the fake model server over a socket, results read back through the API."""

from __future__ import annotations

import json
from typing import Any

from judgelab.testing.fake_openai import FakeOpenAIServer
from tests.conftest import Api
from tests.jobs.conftest import RuntimeFactory
from tests.jobs.test_jobs import wait_for

APPLIES = "Decide only whether the criterion below applies"


def _verdict(result: Any) -> str:
    return json.dumps({"result": result, "explanation": "scripted"})


def model(body: dict[str, Any]) -> str:
    """Answers by what is asked: trigger questions by the transcript, then by the result's type."""
    text = body["messages"][-1]["content"]
    result = body["response_format"]["json_schema"]["schema"]["properties"]["result"]
    if APPLIES in text:
        return _verdict("a refund for the delay" in text)
    if "anyOf" in result:
        return _verdict("cancel" if "cancel my booking" in text else "other")
    if "number" in result.get("type", []):
        return _verdict(0.5 if "Share" in text else 4)
    if "Is this a clear yes?" in text:
        return _verdict(True)
    return _verdict("cancel my booking" in text)


CODE = ("r = judge('Is this a clear yes? ' + data['transcript'][-40:])\n"
        "_result = bool(data['asks to cancel']) and r['result'] is True\n"
        "_explanation = 'cancel and ' + r['explanation']\n")


def test_every_eval_type_and_trigger(api: Api, start_runtime: RuntimeFactory, fake_model: FakeOpenAIServer,
                                     settings: Any) -> None:
    fake_model.rule = model
    start_runtime(settings)
    agent = api.agent()
    cancel = api.call(agent, "cancel", "Yes, please cancel my booking.")["id"]
    refund = api.call(agent, "refund", "I would like a refund for the delay.")["id"]
    specs: list[dict[str, Any]] = [
        {"name": "asks to cancel", "description": "Does the caller ask to cancel?"},
        {"name": "workflow", "eval_type": "binary_workflow_adherence", "description": "Confirms before cancelling?"},
        {"name": "intent", "eval_type": "enum", "enum_values": ["cancel", "change", "other"], "description": "Intent?"},
        {"name": "politeness", "eval_type": "numeric", "description": "Politeness from 1 to 5"},
        {"name": "share", "eval_type": "continuous_qualitative", "description": "Share of questions answered"},
        {"name": "refund auto", "evaluation_trigger": "automatic", "description": "Refund policy followed?"},
        {"name": "refund prompt", "evaluation_trigger": "custom", "trigger_type": "llm_judge",
         "evaluation_trigger_prompt": "the caller asks about a refund", "description": "Refund handled?"},
        {"name": "refund code", "evaluation_trigger": "custom", "trigger_type": "custom_code",
         "evaluation_trigger_custom_code": "_result = 'refund' in data['transcript']\n_explanation = 'code'",
         "description": "Refund handled?"},
        {"name": "combined", "type": "custom_code", "description": "", "custom_code": CODE},
    ]
    ids = [api.metric(**spec)["id"] for spec in specs]
    started = api.post("/observability/v1/call-logs/evaluate_metrics/", json={"call_logs": [cancel, refund], "metrics": ids})
    job = wait_for(api, started.json()["job_id"])
    assert job["status"] == "completed" and job["progress"]["errors"] == 0, job

    def results(call: int) -> dict[str, Any]:
        return {r["name"]: r for r in api.get(f"/observability/v1/call-logs-external/{call}/").json()["evaluation"]["metrics"]}

    on_cancel, on_refund = results(cancel), results(refund)
    assert (on_cancel["asks to cancel"]["value"], on_cancel["asks to cancel"]["score"]) == (True, 5.0)
    assert (on_refund["asks to cancel"]["value"], on_refund["asks to cancel"]["score"]) == (False, 0.0)
    assert on_cancel["workflow"]["value"] is True
    assert (on_cancel["intent"]["value"], on_refund["intent"]["value"]) == ("cancel", "other")
    assert on_cancel["politeness"]["value"] == 4 and on_cancel["share"]["value"] == 0.5
    for name in ("refund auto", "refund prompt", "refund code"):
        assert on_cancel[name]["value"] is None and on_cancel[name]["extra"]["trigger_failed"] is True, name
        assert on_refund[name]["value"] is False and "trigger_failed" not in on_refund[name]["extra"], name
    assert on_cancel["combined"]["value"] is True and on_cancel["combined"]["explanation"] == "cancel and scripted"
    assert on_refund["combined"]["value"] is False
    # Every model request went through the SDK with a JSON schema for the verdict.
    assert all(b["response_format"]["type"] == "json_schema" for b in fake_model.stats.bodies)
