"""The Python client against a live server: every call goes over a real socket."""

from __future__ import annotations

import asyncio

import pytest

from judgelab.client import ApiError, AsyncClient, Client
from tests.client.conftest import Live


def _seed(jl: Client) -> tuple[int, list[int], int]:
    agent = jl.create_agent("bot")["id"]
    calls = [jl.observe({"agent": agent, "call_id": f"c{i}", "transcript": f"User: please cancel booking {i}"})["id"]
             for i in range(3)]
    metric = jl.create_metric({"name": "asks to cancel", "description": "Does the caller ask to cancel?"})["id"]
    return agent, calls, metric


def test_client_runs_an_evaluation_and_votes(live_server: Live) -> None:
    with Client(live_server.url, live_server.key) as jl:
        _agent, calls, metric = _seed(jl)
        assert jl.list_calls(page_size=2)["count"] == 3
        assert len(jl.list_calls(page_size=2)["results"]) == 2
        assert jl.list_calls(search="booking 1")["count"] == 1
        estimate = jl.estimate_evaluation([metric], calls)
        assert estimate["calls"] == 3 and estimate["requires_confirmation"] is False
        job = jl.wait_job(jl.evaluate([metric], calls)["job_id"], timeout=60, interval=0.05)
        assert job["status"] == "completed" and job["progress"]["done"] == 3
        call = jl.get_call(calls[0])
        assert call["evaluation"]["metrics"][0]["value"] is True
        vote = jl.mark_metric_vote(calls[0], metric, "disagree", feedback="At 00:01 the caller asks to cancel only a seat.",
                                   expected_value=False)
        assert vote["label"] is False
        assert jl.get_feedback(metric)["progress"]["total"] == 1
        patched = jl.update_metric(metric, {"description": "Does the caller ask to cancel the whole trip?"})
        assert patched["new_version"] is True and jl.metric_versions(metric)["count"] == 2


def test_client_raises_the_servers_message(live_server: Live) -> None:
    with Client(live_server.url, live_server.key) as jl:
        with pytest.raises(ApiError) as missing:
            jl.get_metric(999_999)
        assert missing.value.status == 404 and "999999" in missing.value.detail
        with pytest.raises(ApiError) as bad:
            jl.create_metric({"name": "x", "description": "y", "eval_type": "stars"})
        assert bad.value.status in (400, 422) and bad.value.errors[0]["field"] == "eval_type"
    with Client(live_server.url, "jl_not_a_key") as wrong, pytest.raises(ApiError) as denied:
        wrong.list_metrics()
    assert denied.value.status == 401


def test_client_reads_url_and_key_from_the_environment(live_server: Live, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JUDGELAB_URL", live_server.url)
    monkeypatch.setenv("JUDGELAB_API_KEY", live_server.key)
    with Client() as jl:
        assert jl.list_metrics()["count"] == 0
    monkeypatch.delenv("JUDGELAB_API_KEY")
    with pytest.raises(ValueError, match="JUDGELAB_API_KEY"):
        Client()


def test_async_client(live_server: Live) -> None:
    async def main() -> None:
        async with AsyncClient(live_server.url, live_server.key) as jl:
            agent = (await jl.create_agent("bot"))["id"]
            call = (await jl.observe({"agent": agent, "transcript": "User: please cancel"}))["id"]
            metric = (await jl.create_metric({"name": "m", "description": "Does the caller ask to cancel?"}))["id"]
            job = await jl.wait_job((await jl.evaluate([metric], [call]))["job_id"], timeout=60, interval=0.05)
            assert job["status"] == "completed"
            with pytest.raises(ApiError) as err:
                await jl.evaluate([metric], [call, 123456])
            assert err.value.status == 404

    asyncio.run(main())
