from __future__ import annotations

import pytest

from tests.conftest import Api

E = "/api/v1/evaluations/estimate/"


@pytest.fixture
def setup(api: Api) -> dict[str, int]:
    agent = api.agent("est")
    other = api.agent("other")
    for i in range(5):
        api.call(agent, f"e{i}", "word " * 400, timestamp=f"2024-05-0{i + 1}T00:00:00Z")
    api.call(other, "o1", "short")
    judge = api.metric("judge", model="openai/gpt-4.1-mini")
    gated = api.metric("gated", evaluation_trigger="automatic", model="openai/gpt-4.1-mini")
    code = api.metric("code", type="custom_code", custom_code="_result = 1\n_explanation = ''", description="")
    unpriced = api.metric("unpriced", model="openai/some-future-model")
    return {"agent": agent, "judge": judge["id"], "gated": gated["id"], "code": code["id"], "unpriced": unpriced["id"]}


def test_estimate_counts_calls_tokens_and_money(api: Api, setup: dict[str, int]) -> None:
    r = api.post(E, json={"metrics": [setup["judge"]], "agent": setup["agent"]})
    assert r.status_code == 200, r.text
    est = r.json()
    assert (est["calls"], est["evaluations"], est["llm_requests"]) == (5, 5, 5)
    # ~2 000 transcript characters per call -> ~500 tokens each, plus the fixed prompt.
    assert 5 * 500 < est["input_tokens"] < 5 * 1000
    assert est["output_tokens"] == 5 * 150
    expected_cost = (est["input_tokens"] * 0.40 + est["output_tokens"] * 1.60) / 1e6
    assert est["cost_usd"] == pytest.approx(expected_cost)
    assert est["requires_confirmation"] is False and est["confirm_above_calls"] == 100
    assert "4 characters per token" in est["tokenizer"]


def test_triggers_code_metrics_and_unknown_prices(api: Api, setup: dict[str, int]) -> None:
    est = api.post(E, json={"metrics": [setup["judge"], setup["gated"], setup["code"]]}).json()
    assert est["calls"] == 6 and est["evaluations"] == 18 and est["llm_requests"] == 6 + 12
    assert est["notes"] == []  # code that never asks the judge costs nothing
    # Code that asks the judge is priced at the declared maximum of nested requests (5 by default).
    asks = api.metric("asks", type="custom_code", model="openai/gpt-4.1-mini", description="",
                      custom_code="r = judge('polite?')\n_result = r['result']\n_explanation = ''")
    est = api.post(E, json={"metrics": [asks["id"]]}).json()
    assert est["llm_requests"] == 6 * 5 and est["cost_usd"] > 0
    assert any("maximum of 5 nested requests" in n for n in est["notes"])
    est = api.post(E, json={"metrics": [setup["unpriced"]]}).json()
    assert est["cost_usd"] is None and any("no price known" in n for n in est["notes"])


def test_no_model_configured_is_said(api: Api) -> None:
    agent = api.agent()
    api.call(agent)
    metric = api.metric()
    est = api.post(E, json={"metrics": [metric["id"]]}).json()
    assert est["cost_usd"] is None and any("JUDGELAB_MODEL" in n for n in est["notes"])


def test_explicit_calls_and_bad_requests(api: Api, setup: dict[str, int]) -> None:
    calls = api.get("/observability/v1/call-logs-external/", params={"agent": setup["agent"]}).json()["results"]
    est = api.post(E, json={"metrics": [setup["judge"]], "call_logs": [calls[0]["id"], calls[1]["id"]]}).json()
    assert est["calls"] == 2
    assert api.post(E, json={"metrics": [setup["judge"]], "call_logs": [999]}).status_code == 404
    assert api.post(E, json={"metrics": [999]}).status_code == 404
    assert api.post(E, json={"metrics": []}).status_code == 422
    r = api.post(E, json={"metrics": [setup["judge"]], "call_logs": [calls[0]["id"]], "agent": setup["agent"]})
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "call_logs"
    assert api.post(E, json={"metrics": [setup["judge"]], "project_id": 9999}).status_code == 404


def test_more_than_100_calls_need_confirmation(api: Api) -> None:
    agent = api.agent("many")
    lines = "\n".join('{"call_id": "m%d", "transcript": "User: hi %d"}' % (i, i) for i in range(101))
    assert api.post("/api/v1/call-logs/import/", params={"agent": "many"}, content=lines).status_code == 200
    metric = api.metric()
    est = api.post(E, json={"metrics": [metric["id"]], "agent": agent}).json()
    assert est["calls"] == 101 and est["requires_confirmation"] is True
