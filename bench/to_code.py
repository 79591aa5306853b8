"""Convert-to-code on the airline calls: how much of each judge request the generated code saves.

    .venv/bin/python bench/to_code.py

The tau-bench airline conversations are imported through the product's own path; the labelled set
is `bench/data/airline-confirmation.jsonl` (a deterministic rule over the tool calls: every write
action followed an explicit yes). As a conversion run does, the keywords are chosen on half the
labelled calls (split by task, so the 4 trials of a task stay on one side) and the saving is
measured on the other half: the full judge request of the metric against the request the
generated code's nested judge sends, both built by judgelab's own `build_request`, the code run in
the real sandbox. Sizes are in characters and in tokens estimated at 4 characters per token (no
tokenizer is reachable here); the ratio does not depend on that estimate.

Agreement needs a real judge: the conversion run (`judgelab to-code`) measures it on labelled calls
with the model you configure. This bench measures what is sent.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from airline_labels import OUT as LABELS  # noqa: E402
from airline_labels import SOURCE  # noqa: E402

from judgelab.calls.files import read_calls  # noqa: E402
from judgelab.calls.queries import get_call_for_judging  # noqa: E402
from judgelab.calls.writer import import_payloads  # noqa: E402
from judgelab.config import Settings  # noqa: E402
from judgelab.db import open_database  # noqa: E402
from judgelab.db.models import CallLog  # noqa: E402
from judgelab.evaluation.engine import sandbox_data  # noqa: E402
from judgelab.evaluation.sandbox import run_custom_code  # noqa: E402
from judgelab.judges.verdict import build_request  # noqa: E402
from judgelab.labs.dataset import fingerprint, group_of  # noqa: E402
from judgelab.labs.to_code import choose_keywords, generate, parts  # noqa: E402
from judgelab.metrics.definition import MetricContent  # noqa: E402
from judgelab.projects.service import get_or_create_project  # noqa: E402

CRITERION = ("Pass when the agent obtains the customer's explicit confirmation (a yes) before every action that "
             "changes the reservation: booking, modifying, cancelling or updating it. Fail when any such action is "
             "taken without it.")


def _size(request: Any) -> int:
    return sum(len(m.content) for m in request.messages)


async def measure(code: str, content: MetricContent, calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for call in calls:
        full = _size(build_request(model="m", criterion=content.description, eval_type=content.eval_type,
                                   enum_values=None, call=call))
        sent: list[int] = []

        async def nested(prompt: str, eval_type: str, enum_values: Any, transcript: str | None = None,
                         context: str | None = None) -> dict[str, Any]:
            seen = {"transcript": transcript, "transcript_json": [], "agent_description": context or ""}
            sent.append(_size(build_request(model="m", criterion=prompt, eval_type=eval_type, enum_values=enum_values,
                                            call=seen)))
            return {"result": True, "explanation": "measured"}

        ran = await run_custom_code(code, sandbox_data(call, None), nested_judge=nested)
        rows.append({"full": full, "code": sum(sent), "error": ran.error, **{k: ran.extra.get(k) for k in (
            "turns_sent", "turns_total", "sections_sent", "facts_sent")}})
    return rows


def main() -> None:
    if not SOURCE.exists():
        raise SystemExit(f"the airline conversations are not here ({SOURCE})")
    truth = {r["call_id"]: r for r in map(json.loads, LABELS.read_text().splitlines()) if r["confirmation"] is not None}
    settings = Settings(data_dir=Path(tempfile.mkdtemp(prefix="judgelab-tocode-")))
    db = open_database(settings)
    _fmt, payloads, errors = read_calls(SOURCE, "openai")
    assert not errors, errors[:3]
    with db.session() as s:
        project, _ = get_or_create_project(s, "to-code")
        import_payloads(s, project.id, payloads, settings, default_agent="airline", create_missing_agents=True)
        rows = s.query(CallLog.id, CallLog.call_id).all()
        items = []
        for row_id, call_id in rows:
            if call_id in truth:
                call, _hash = get_call_for_judging(s, project.id, row_id, with_results=False)
                items.append({"key": call_id, "call": call, "label": truth[call_id]["confirmation"],
                              "reason": truth[call_id]["confirmation_reason"], "fingerprint": fingerprint(call),
                              "group": group_of(call), "trained": False})
    content = MetricContent(description=CRITERION, eval_type="binary_workflow_adherence")
    chosen_on, measured_on = parts(items)
    words = choose_keywords(CRITERION, chosen_on)
    code = generate("confirmation", 1, content, words)
    got = asyncio.run(measure(code, content, [i["call"] for i in measured_on]))
    ok = [r for r in got if r["error"] is None and r["full"]]
    failed = [r for r in got if r["error"] is not None]
    full, sent = sum(r["full"] for r in ok), sum(r["code"] for r in ok)
    rng = random.Random(0)
    shares = sorted(1 - sum(r["code"] for r in sample) / sum(r["full"] for r in sample)
                    for sample in ([ok[rng.randrange(len(ok))] for _ in ok] for _ in range(2000)))
    print(f"{len(items)} labelled airline calls: keywords chosen on {len(chosen_on)}, measured on {len(measured_on)} "
          f"(split by task)")
    print(f"keywords: {', '.join(words)}")
    print(f"judge request per call, mean: full {full / len(ok):,.0f} characters (~{full / len(ok) / 4:,.0f} tokens); "
          f"code {sent / len(ok):,.0f} characters (~{sent / len(ok) / 4:,.0f} tokens)")
    print(f"saved: {1 - sent / full:.1%} of input (95 % bootstrap interval over calls {shares[49]:.1%} to {shares[1949]:.1%})")
    print(f"turns sent: {sum(r['turns_sent'] or 0 for r in ok)} of {sum(r['turns_total'] or 0 for r in ok)}; policy sections "
          f"sent per call: {sum(r['sections_sent'] or 0 for r in ok) / len(ok):.1f}; failed conversions: {len(failed)}"
          + (f" (first: {failed[0]['error']})" if failed else ""))
    db.dispose()


if __name__ == "__main__":
    main()
