"""Prompt prefix caching: input tokens billed at the cached rate for 5 metrics x 200 calls.

    .venv/bin/python bench/prompt_cache.py

The 200 shipped airline conversations (with the airline policy as agent description) are judged
by 5 metrics each through judgelab's OpenAI provider, twice, against the fake model server playing
OpenAI's automatic prefix cache (1 024-token minimum, 128-token steps): once with judgelab's
request layout (the call's data first, the criterion last) and once with the layout before it
(criterion first, then the data), the baseline measured in the same run. It prints input tokens,
how many were read from the cache, and the cost at gpt-4.1-mini's list prices, and then what
judgelab's estimate predicts for the same evaluation. The fake server's cache is a simulation of
the provider's documented behaviour: the figures show the layout's effect, not a provider's bill.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from judgelab.calls.files import read_calls  # noqa: E402
from judgelab.calls.queries import get_call_for_judging  # noqa: E402
from judgelab.calls.writer import import_payloads  # noqa: E402
from judgelab.config import Settings  # noqa: E402
from judgelab.db import open_database  # noqa: E402
from judgelab.db.models import CallLog  # noqa: E402
from judgelab.demo import AIRLINE  # noqa: E402
from judgelab.evaluation.estimate import estimate  # noqa: E402
from judgelab.judges.client import JudgeClient  # noqa: E402
from judgelab.judges.providers.openai import OpenAIProvider  # noqa: E402
from judgelab.judges.types import ChatMessage, ChatRequest  # noqa: E402
from judgelab.judges.verdict import build_request  # noqa: E402
from judgelab.metrics.schemas import MetricCreate  # noqa: E402
from judgelab.metrics.service import create_metric  # noqa: E402
from judgelab.projects.service import get_or_create_project  # noqa: E402
from judgelab.testing.fake_openai import FakeOpenAIServer  # noqa: E402

MODEL = "gpt-4.1-mini"
CRITERIA = [
    "Pass when the agent gets an explicit yes before every change to the reservation.",
    "Pass when the agent verifies the customer's identity before discussing the booking.",
    "Pass when the agent follows the baggage policy.",
    "Pass when the agent offers compensation only as the policy allows.",
    "Pass when the agent is polite and concise throughout.",
]


def criterion_first(request: ChatRequest) -> ChatRequest:
    """The layout before judge-v3: the criterion, then the call's data."""
    user = request.messages[1].content
    block, rest = user[:request.cache_prefix], user[request.cache_prefix:]
    return replace(request, messages=(request.messages[0], ChatMessage("user", rest + "\n\n" + block.strip())),
                   cache_prefix=0)


async def judge_all(calls: list[dict[str, Any]], base_url: str, layout: Any) -> dict[str, float]:
    client = JudgeClient(OpenAIProvider(base_url=base_url, api_key="x"), max_concurrency=16)
    try:
        for call in calls:  # metric by metric on each call, as an evaluation job's stage does
            await asyncio.gather(*[client.complete(layout(build_request(
                model=MODEL, criterion=c, eval_type="binary_workflow_adherence", enum_values=None, call=call)))
                for c in CRITERIA])
    finally:
        await client.aclose()
    u = client.usage
    return {"input": u.input_tokens, "cached": u.cached_input_tokens, "cost": u.cost_usd, "requests": u.requests}


def main() -> None:
    settings = Settings(data_dir=Path(tempfile.mkdtemp(prefix="judgelab-cache-")), model=f"openai/{MODEL}")
    db = open_database(settings)
    _fmt, payloads, _errors = read_calls(AIRLINE, "openai")
    with db.session() as s:
        project, _ = get_or_create_project(s, "cache")
        import_payloads(s, project.id, payloads, settings, default_agent="airline", create_missing_agents=True)
        ids = [i for (i,) in s.query(CallLog.id).order_by(CallLog.id).all()]
        calls = [get_call_for_judging(s, project.id, i, with_results=False)[0] for i in ids]
        metrics = [create_metric(s, project.id, MetricCreate(name=f"m{k}", description=c,
                                                             eval_type="binary_workflow_adherence")).id
                   for k, c in enumerate(CRITERIA)]
        predicted = estimate(s, project.id, metrics, settings.model, call_ids=ids)
    rows = []
    for name, layout in (("judgelab (data first, criterion last)", lambda r: r), ("criterion first (before)", criterion_first)):
        with FakeOpenAIServer(rule=lambda body: '{"result": true, "explanation": "ok"}', prefix_cache=True,
                              keep_bodies=False) as server:
            rows.append((name, asyncio.run(judge_all(calls, server.base_url, layout))))
    print(f"{len(calls)} calls x {len(CRITERIA)} metrics, {MODEL} list prices; fake server playing OpenAI's prefix cache "
          "(mechanics only)\n")
    print(f"{'layout':<40} {'requests':>8} {'input tokens':>13} {'cached':>11} {'cached share':>12} {'cost':>9}")
    for name, r in rows:
        print(f"{name:<40} {r['requests']:>8} {r['input']:>13,} {r['cached']:>11,} {r['cached'] / r['input']:>12.1%} "
              f"${r['cost']:>8.4f}")
    ours, before = rows[0][1], rows[1][1]
    print(f"\ncost ratio judgelab / before: {ours['cost'] / before['cost']:.2f}")
    print(f"judgelab's estimate for the same evaluation: {predicted.input_tokens:,} input tokens, "
          f"{predicted.cached_input_tokens:,} at the cached rate ({predicted.cached_input_tokens / predicted.input_tokens:.1%}), "
          f"${predicted.cost_usd:.4f}")
    db.dispose()


if __name__ == "__main__":
    main()
