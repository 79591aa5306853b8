"""The seed platform's own routine, by its tool names and argument names, against /mcp.

`improve-metric` (cekura-skills): metrics_retrieve -> metric_reviews_process_feedbacks -> poll
metric_reviews_process_feedbacks_progress until status is success or error -> read
output.metric_description / output.evaluation_trigger -> metrics_partial_update ->
metrics_run_reviews_create -> poll metrics_run_reviews_progress."""

from __future__ import annotations

import asyncio
from typing import Any

from judgelab.mcp.seed_tools import ALIASES
from judgelab.testing.fake_openai import FakeOpenAIServer
from tests.client.conftest import Live
from tests.labs.test_labs_run import PARAPHRASE_RULE, STRICT, model
from tests.mcp.test_mcp import _http, _tool


def _labelled(live: Live) -> int:
    from judgelab.client import Client as Api
    from tests.conftest import add_result

    with Api(live.url, live.key) as jl:
        agent = jl.create_agent("bot")["id"]
        metric = jl.create_metric({"name": "confirms", "eval_type": "binary_workflow_adherence", "description": STRICT})["id"]
        for kind, text in {"y": "Customer: yes", "p": "Sure, go ahead", "n": "I booked it"}.items():
            for i in range(6):
                call = jl.observe({"agent": agent, "call_id": f"{kind}{i}", "transcript_json": [
                    {"role": "agent", "content": f"Book flight ref-{kind}{i}?", "start_time": 0.0},
                    {"role": "user", "content": text, "start_time": 3.0}]})["id"]
                add_result(live.db, call, metric, kind == "y", "read it")
                if kind == "p":
                    jl.mark_metric_vote(call, metric, vote="disagree", expected_value=True,
                                        feedback="a paraphrased confirmation counts as yes")
                else:
                    jl.mark_metric_vote(call, metric, vote="agree", feedback="right")
    return int(metric)


async def _poll(client: Any, tool: str, progress_id: str) -> dict[str, Any]:
    for _ in range(600):
        out = await _tool(client, tool, progress_id=progress_id)
        assert out["status"] in ("success", "error", "in_progress"), out["status"]
        if out["status"] in ("success", "error"):
            return out
        await asyncio.sleep(0.1)
    raise AssertionError(f"{tool} never finished: {out}")


def test_the_seed_platforms_improve_metric_routine_runs_unchanged(live_server: Live, fake_model: FakeOpenAIServer) -> None:
    fake_model.rule = model
    metric = _labelled(live_server)

    async def main() -> None:
        async with _http(live_server) as client:
            names = {t.name for t in (await client.list_tools()).tools}
            assert set(ALIASES) <= names
            before = await _tool(client, "metrics_retrieve", id=metric)
            assert before["description"] == STRICT
            started = await _tool(client, "metric_reviews_process_feedbacks", metric_id=metric)
            done = await _poll(client, "metric_reviews_process_feedbacks_progress", started["progress_id"])
            assert done["status"] == "success" and done["judgelab_status"] == "completed"
            output = done["output"]
            assert output["metric_description"] == output["improved_metric_description"] == done["improved_metric_description"]
            assert PARAPHRASE_RULE.strip() in output["metric_description"] and output["evaluation_trigger"] == "always"
            harness = output["meta_harness"]
            held = done["scores"]["held_out"]["proposal"]
            assert harness == {"optimized_code": None, "type": "llm_judge", "score": held["accuracy"]["value"],
                               "num_correct": held["num_correct"], "num_total": held["num_total"]}
            assert harness["num_total"] == 6 and harness["num_correct"] == 6
            # The routine applies what it read; judgelab never applied anything by itself.
            assert (await _tool(client, "metrics_retrieve", id=metric))["version"] == 1
            updated = await _tool(client, "metrics_partial_update", id=metric, description=output["metric_description"],
                                  evaluation_trigger=output["evaluation_trigger"])
            assert updated["version"] == 2
            reviews = await _tool(client, "metrics_run_reviews_create", id=metric)
            checked = await _poll(client, "metrics_run_reviews_progress", reviews["progress_id"])
            assert checked["status"] == "success"
            assert checked["output"]["summary"] == {"fixed": 6, "regressed": 0, "changed": 0, "error": 0}
            assert checked["output"]["checked"] == 18

    asyncio.run(main())
