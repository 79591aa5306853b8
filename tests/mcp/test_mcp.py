"""The MCP tools through the SDK's own client, over streamable HTTP (/mcp) and stdio (`judgelab mcp`)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Callable
from typing import Any

import httpx2
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from tests.client.conftest import Live

TOOLS = {"draw_audit_sample", "list_calls", "get_call", "list_metrics", "get_metric", "create_metric", "update_metric", "estimate_evaluation",
         "evaluate_calls", "rerun_evaluation", "get_job", "mark_metric_vote", "get_feedback_progress",
         "create_test_set_from_call_log", "find_misaligned_metrics", "start_labs", "get_labs_progress",
         "answer_labs_question", "validate_metric", "convert_to_custom_code"}


def _http(live: Live, key: str | None = None) -> Client:
    headers = {"Authorization": f"Bearer {key or live.key}"}
    return Client(streamable_http_client(f"{live.url}/mcp", http_client=httpx2.AsyncClient(headers=headers, timeout=30)))


def _stdio(live: Live, url: str | None) -> Client:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JUDGELAB_")}
    env.update({"JUDGELAB_API_KEY": live.key, "JUDGELAB_DATA_DIR": str(live.settings.data_dir),
                "JUDGELAB_MODEL": live.settings.model or ""})
    if url:
        env["JUDGELAB_URL"] = url
    else:
        env["JUDGELAB_DATABASE_URL"] = live.db.engine.url.render_as_string(hide_password=False)
    return Client(StdioServerParameters(command=sys.executable, args=["-m", "judgelab", "mcp"], env=env))


async def _tool(client: Client, tool: str, **args: Any) -> dict[str, Any]:
    result = await client.call_tool(tool, args)
    assert not result.is_error, result.content
    return json.loads(result.content[0].text)  # type: ignore[union-attr]


async def _walk(client: Client, live: Live) -> None:
    """An agent's first steps: find calls, make a metric, evaluate, read the result, vote."""
    listed = await client.list_tools()
    names = {t.name for t in listed.tools}
    assert TOOLS <= names
    page_size = next(t for t in listed.tools if t.name == "list_calls").input_schema["properties"]["page_size"]
    assert page_size["maximum"] == 200

    calls = await _tool(client, "list_calls", search="cancel")
    assert calls["count"] == 2
    metric = await _tool(client, "create_metric", name="asks to cancel", description="Does the caller ask to cancel?")
    estimate = await _tool(client, "estimate_evaluation", metric_ids=[metric["id"]], search="cancel")
    assert estimate["calls"] == 2
    job = await _tool(client, "evaluate_calls", metric_ids=[metric["id"]], search="cancel")
    for _ in range(300):
        job = await _tool(client, "get_job", job_id=job["job_id"])
        if job["status"] not in ("queued", "starting", "running"):
            break
        await asyncio.sleep(0.05)
    assert job["status"] == "completed", job
    call_id = calls["results"][0]["id"]
    call = await _tool(client, "get_call", call_id=call_id)
    assert call["evaluation"]["metrics"][0]["value"] is True
    vote = await _tool(client, "mark_metric_vote", call_id=call_id, metric_id=metric["id"], vote="disagree",
                       feedback="At 00:01 the caller only asks about cancelling, without asking for it.", expected_value=False)
    assert vote["label"] is False
    progress = await _tool(client, "get_feedback_progress", metric_id=metric["id"])
    assert progress["progress"]["total"] == 1 and progress["progress"]["ready_for_labs"] is False
    misaligned = await _tool(client, "find_misaligned_metrics")
    assert misaligned["results"][0]["metric_id"] == metric["id"]

    # API errors are tool errors with the API's sentence.
    missing = await client.call_tool("get_metric", {"metric_id": 999999})
    assert missing.is_error and "404" in missing.content[0].text and "999999" in missing.content[0].text  # type: ignore[union-attr]
    early = await client.call_tool("start_labs", {"metric_id": metric["id"]})
    assert early.is_error and "6" in early.content[0].text  # type: ignore[union-attr]
    bad = await client.call_tool("list_calls", {"page_size": 500})
    assert bad.is_error


def _seed(live: Live) -> None:
    from judgelab.client import Client as Api

    with Api(live.url, live.key) as jl:
        agent = jl.create_agent("bot")["id"]
        for i, text in enumerate(["User: please cancel my trip", "User: please cancel the hotel", "User: change my seat"]):
            jl.observe({"agent": agent, "call_id": f"c{i}", "transcript": text})


def _run(make: Callable[[], Client], live: Live) -> None:
    async def main() -> None:
        async with make() as client:
            await _walk(client, live)

    asyncio.run(main())


def test_mcp_over_streamable_http(live_server: Live) -> None:
    _seed(live_server)
    _run(lambda: _http(live_server), live_server)


def test_mcp_http_refuses_a_missing_or_wrong_key(live_server: Live) -> None:
    for headers in ({}, {"Authorization": "Bearer jl_wrong"}):
        r = httpx2.post(f"{live_server.url}/mcp", headers={**headers, "Accept": "application/json, text/event-stream"},
                        json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
        assert r.status_code == 401, r.text


def test_mcp_over_stdio_to_a_server(live_server: Live) -> None:
    _seed(live_server)
    _run(lambda: _stdio(live_server, live_server.url), live_server)


# The PostgreSQL test database lives in a per-run schema a child process cannot be pointed at.
@pytest.mark.parametrize("backend", ["sqlite"])
def test_mcp_over_stdio_on_the_local_database(live_server: Live, backend: str) -> None:
    _seed(live_server)
    _run(lambda: _stdio(live_server, None), live_server)


def test_mcp_stdio_without_a_key_says_so(tmp_path: Any) -> None:
    import subprocess

    env = {k: v for k, v in os.environ.items() if not k.startswith("JUDGELAB_")}
    out = subprocess.run([sys.executable, "-m", "judgelab", "mcp"], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "JUDGELAB_API_KEY" in out.stderr




def test_mcp_evaluate_calls_needs_confirm_above_100_calls(live_server: Live) -> None:
    from judgelab.client import Client as Api

    with Api(live_server.url, live_server.key) as jl:
        agent = jl.create_agent("bulk")["id"]
        for i in range(101):
            jl.observe({"agent": agent, "call_id": f"b{i}", "transcript": f"User: please cancel {i}"})
        metric = jl.create_metric({"name": "cancel", "description": "Does the caller ask to cancel?"})["id"]

    async def main() -> None:
        async with _http(live_server) as client:
            refused = await client.call_tool("evaluate_calls", {"metric_ids": [metric], "agent": agent})
            assert refused.is_error
            text = refused.content[0].text  # type: ignore[union-attr]
            assert "409: confirm: this evaluation covers 101 calls" in text and "(estimate: 101 calls, 101 LLM requests" in text
            started = await _tool(client, "evaluate_calls", metric_ids=[metric], agent=agent, confirm=True)
            assert started["status"] in ("queued", "starting", "running", "completed")

    asyncio.run(main())
