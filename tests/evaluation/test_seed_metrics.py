"""Python metrics written for the seed platform run unchanged: its helper names, its `utils` module,
its `data` keys, and its {{transcript}}-style prompt variables (bound inside the data fence).

The metrics below are written in the style of the platform's published examples (cekura-skills'
metric-design examples: section extraction, gating on an upstream metric, VALID_SKIP), through the
real sandbox and the real engine; only the model is scripted."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from judgelab.evaluation.engine import evaluate, sandbox_data
from judgelab.judges.client import JudgeClient
from judgelab.judges.providers.fake import FakeProvider
from judgelab.judges.verdict import bind_variables, build_request
from judgelab.metrics.definition import MetricContent

CALL = {
    "id": 41, "call_id": "vapi-abc", "duration": 93.5, "call_ended_reason": "customer-ended-call",
    "agent_description": "# Greeting\nSay hello.\n\n# Booking flow\nConfirm the slot before booking.\n\n# Billing\nNever quote prices.",
    "metadata": {"plan": "gold", "region": "EU"}, "dynamic_variables": {"caller_name": "Ada"},
    "transcript_json": [{"role": "agent", "content": "Shall I book 3pm?", "start_time": 3.0},
                        {"role": "user", "content": "Yes please.", "start_time": 5.0}],
}

SECTIONED = '''from utils import extract_section, parse_llm_result, METRIC_SECTIONS

booking = extract_section(data.get("agent_description", ""), METRIC_SECTIONS["booking_flow"])
prompt = f"""
INPUTS:
- {{{{transcript}}}}
- {{{{dynamic_variables}}}}
- The caller's plan: {{{{metadata.plan}}}}

BOOKING INSTRUCTIONS (extracted):
---
{booking}
---
Return TRUE when the agent confirmed the slot before booking.
"""
res = evaluate_basic_metric(data, API_KEY, prompt)
_result, _explanation = parse_llm_result(res, prefix="[Booking] ")
_extra = {"duration": data["call_duration"], "log": data["call_log_id"], "end": data["call_end_reason"]}
'''

GATED = '''upstream = data.get("Booking made")
if upstream is not True:
    _result = None
    _explanation = "Skipped: no booking was made."
else:
    res = evaluate_llm_judge_metric(data, "Did the agent read back {{metadata.region}} terms? {{transcript}}",
                                    "binary_workflow_adherence")
    _result, _explanation = parse_llm_result(res)
'''


def _run(code: str, answers: list[str], others: dict[str, Any] | None = None) -> tuple[Any, FakeProvider]:
    fake = FakeProvider(answers)
    client = JudgeClient(fake, sleep=lambda s: asyncio.sleep(0))
    content = MetricContent(type="custom_code", custom_code=code, eval_type="binary_workflow_adherence", description="")
    return asyncio.run(evaluate(content, CALL, {"fake": client}.__getitem__, "fake/judge", other_results=others)), fake


def test_a_sectioned_metric_in_the_platforms_style_runs() -> None:
    out, fake = _run(SECTIONED, [json.dumps({"result": True, "explanation": "confirmed at 00:05"})])
    assert out.error is None, out.error
    assert (out.value, out.explanation) == (True, "[Booking] confirmed at 00:05")
    assert out.extra["duration"] == 93.5 and out.extra["log"] == 41 and out.extra["end"] == "customer-ended-call"
    [request] = fake.requests
    user = request.messages[1].content
    data_block, criterion = user.split("\n\nCriterion:\n", 1)
    # Only the booking section was extracted; the variables point into the fence, and their values are inside it.
    assert "Confirm the slot before booking." in criterion and "Never quote prices" not in criterion
    assert "(the transcript, in the call data below)" in criterion and "{{" not in criterion
    assert '[metadata.plan: see "Prompt variables" in the call data below]' in criterion and "gold" not in criterion
    assert "## Prompt variables\nmetadata.plan = \"gold\"" in data_block


def test_gating_on_another_metric_and_valid_skip() -> None:
    skipped, fake = _run(GATED, [], others={"Booking made": False})
    assert skipped.error is None and skipped.value is None and not fake.requests
    out, fake = _run(GATED, [json.dumps({"result": False, "explanation": "VALID_SKIP: the caller hung up first"})],
                     others={"Booking made": True})
    assert out.error is None and out.value is None and out.explanation == "VALID_SKIP: the caller hung up first"
    assert "metadata.region = \"EU\"" in fake.requests[0].messages[1].content


def test_prompt_variables_in_a_judge_metric_are_bound_inside_the_fence() -> None:
    criterion, lines = bind_variables("Greet {{dynamic_variables.caller_name}} on the {{metadata.plan}} plan; "
                                      "{{call_end_reason}}; {{metadata.missing}}; {{agent_description}}", CALL)
    assert lines == ['dynamic_variables.caller_name = "Ada"', 'metadata.plan = "gold"',
                     'call_end_reason = "customer-ended-call"', "metadata.missing = (not set on this call)"]
    assert "Ada" not in criterion and "(the agent's instructions, in the call data below)" in criterion
    request = build_request(model="m", criterion="Greet {{dynamic_variables.caller_name}}.", eval_type="binary_qualitative",
                            enum_values=None, call=CALL)
    block, head = request.messages[1].content.split("\n\nCriterion:\n", 1)
    assert "Ada" not in head and 'dynamic_variables.caller_name = "Ada"' in block
    # A criterion without variables is sent exactly as before (cached results stay valid).
    plain = build_request(model="m", criterion="Greet the caller.", eval_type="binary_qualitative", enum_values=None, call=CALL)
    assert "Prompt variables" not in plain.messages[1].content


def test_the_data_keys_the_platform_documents() -> None:
    data = sandbox_data(CALL, {"Booking made": True})
    for key in ("transcript", "transcript_json", "call_duration", "call_end_reason", "agent_description", "metadata",
                "dynamic_variables", "call_log_id", "call_id", "voice_recording", "Booking made"):
        assert key in data, key
    assert (data["call_duration"], data["call_log_id"], data["call_id"]) == (93.5, 41, "vapi-abc")
