"""The seed platform's MCP tool names, as aliases of judgelab's tools.

Its documented routines (the `improve-metric` command, the auto-optimise loop) call these names
with these arguments; registered beside judgelab's own tools they run unchanged against
`judgelab mcp` and `/mcp`. Each is the same HTTP API operation as its judgelab twin; the two
progress tools answer in the platform's vocabulary (`status` success / error / in_progress, an
`output` object), as its routines poll for.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from mcp.server.mcpserver import Context, MCPServer
from pydantic import Field

from judgelab.client import AsyncClient

JSON = dict[str, Any]
Id = Annotated[int, Field(ge=1, le=2**31 - 1)]
Call = Callable[[Context, Callable[[AsyncClient], Awaitable[JSON]]], Awaitable[JSON]]
METRIC_FIELDS = ("name", "description", "eval_type", "enum_values", "evaluation_trigger", "evaluation_trigger_prompt",
                 "trigger_type", "evaluation_trigger_custom_code", "custom_code", "type", "model", "agent",
                 "label_tolerance", "change_note")
ALIASES = ("metric_reviews_process_feedbacks", "metric_reviews_process_feedbacks_progress", "metrics_retrieve",
           "metrics_partial_update", "metrics_run_reviews_create", "metrics_run_reviews_progress")


def register(server: MCPServer, call: Call) -> None:
    @server.tool()
    async def metric_reviews_process_feedbacks(
        ctx: Context, metric_id: Id, test_set_ids: list[Id] | None = None, metric_type: str = "llm_judge",
        skip_evaluation: bool = False, simplified_prompt: str | None = None,
    ) -> JSON:
        """(Seed platform name.) Start a labs run on a metric's feedback: returns progress_id. Nothing is applied."""
        return await call(ctx, lambda c: c.start_labs(metric_id, test_set_ids=test_set_ids, metric_type=metric_type,
                                                      skip_evaluation=skip_evaluation, simplified_prompt=simplified_prompt))

    @server.tool()
    async def metric_reviews_process_feedbacks_progress(ctx: Context, progress_id: str) -> JSON:
        """(Seed platform name.) Poll a labs run until status is success or error; output holds metric_description,
        evaluation_trigger and meta_harness (the held-out score)."""
        return await call(ctx, lambda c: c.labs_progress_seed(progress_id))

    @server.tool()
    async def metrics_retrieve(ctx: Context, id: Id) -> JSON:
        """(Seed platform name.) One metric at its current version."""
        return await call(ctx, lambda c: c.get_metric(id))

    @server.tool()
    async def metrics_partial_update(
        ctx: Context, id: Id, description: str | None = None, evaluation_trigger: str | None = None,
        evaluation_trigger_prompt: str | None = None, name: str | None = None,
        changes: Annotated[JSON | None, Field(description="other fields to change (judgelab's PATCH body)")] = None,
    ) -> JSON:
        """(Seed platform name.) PATCH a metric; a change to judged content makes a new version."""
        body = {k: v for k, v in {"description": description, "evaluation_trigger": evaluation_trigger,
                                  "evaluation_trigger_prompt": evaluation_trigger_prompt, "name": name}.items()
                if v is not None}
        body.update({k: v for k, v in (changes or {}).items() if k in METRIC_FIELDS})
        return await call(ctx, lambda c: c.update_metric(id, body))

    @server.tool()
    async def metrics_run_reviews_create(ctx: Context, id: Id, confirm: bool = False) -> JSON:
        """(Seed platform name.) Re-score the metric's current version on its labelled calls: returns progress_id."""
        return await call(ctx, lambda c: c.run_reviews(id, confirm=confirm))

    @server.tool()
    async def metrics_run_reviews_progress(ctx: Context, progress_id: str) -> JSON:
        """(Seed platform name.) Poll a run_reviews run until status is success or error; output holds the summary."""
        return await call(ctx, lambda c: c.run_reviews_progress(progress_id))
