"""Peers for bench/throughput.py, against the same fake model and the same calls.

- a bare asyncio loop over the `openai` SDK (no storage, no retries beyond none): the ceiling a
  client in this process can reach against this server on this machine;
- Arize Phoenix evals (`arize-phoenix-evals`, in the `bench` extra only), `async_evaluate_dataframe`
  with a `create_classifier` evaluator: once with its defaults, once with its rate limiter started
  at C/L and C consumers.

Each returns evaluations done, wall seconds, CPU seconds of this process, and failures.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

CRITERION = "Did the agent confirm the change?"


async def _bare(base_url: str, transcripts: list[str], concurrency: int) -> dict[str, Any]:
    import openai

    client = openai.AsyncOpenAI(base_url=base_url, api_key="x", max_retries=5)
    gate = asyncio.Semaphore(concurrency)
    failures = 0

    async def one(transcript: str) -> None:
        nonlocal failures
        async with gate:
            try:
                await client.chat.completions.create(model="bench-judge", messages=[
                    {"role": "system", "content": "You are a strict evaluator. Answer in JSON."},
                    {"role": "user", "content": f"Conversation:\n{transcript}\n\nCriterion: {CRITERION}"}])
            except openai.APIError:
                failures += 1

    cpu0, t0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(one(t) for t in transcripts))
    out = {"done": len(transcripts) - failures, "wall": time.perf_counter() - t0, "cpu": time.process_time() - cpu0,
           "failures": failures}
    await client.close()
    return out


def bare_sdk(base_url: str, transcripts: list[str], concurrency: int) -> dict[str, Any]:
    return asyncio.run(_bare(base_url, transcripts, concurrency))


def phoenix(base_url: str, transcripts: list[str], *, concurrency: int | None, rate: float | None) -> dict[str, Any]:
    """Phoenix evals; `concurrency` and `rate` None mean its defaults."""
    try:
        import pandas as pd
        from phoenix.evals import async_evaluate_dataframe, create_classifier
        from phoenix.evals.llm import LLM
    except ImportError:
        return {"missing": "pip install -e '.[bench]' (arize-phoenix-evals)"}
    kwargs: dict[str, Any] = {"base_url": base_url, "api_key": "x"}
    if rate is not None:
        kwargs["initial_per_second_request_rate"] = rate
    llm = LLM(provider="openai", model="bench-judge", **kwargs)
    evaluator = create_classifier(
        name="confirms", llm=llm, choices={"pass": 1.0, "fail": 0.0},
        prompt_template="Conversation:\n{transcript}\n\nCriterion: " + CRITERION + "\nAnswer pass or fail.")
    frame = pd.DataFrame({"transcript": transcripts})
    run: dict[str, Any] = {"hide_tqdm_bar": True, "exit_on_error": False}
    if concurrency is not None:
        run["concurrency"] = concurrency
    cpu0, t0 = time.process_time(), time.perf_counter()
    result = asyncio.run(async_evaluate_dataframe(frame, [evaluator], **run))
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    details = result["confirms_execution_details"].astype(str)
    failures = int((~details.str.contains("COMPLETED", case=False)).sum())
    return {"done": len(transcripts) - failures, "wall": wall, "cpu": cpu, "failures": failures}
