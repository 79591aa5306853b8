"""Property test: no body, however malformed, gets a 500 from any write endpoint."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import Api

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=30),
)
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4), max_leaves=12)

FIELDS = {
    "/observability/v1/observe/": ["agent", "call_id", "transcript_json", "transcript", "transcript_type", "metadata",
                                   "dynamic_variables", "timestamp", "duration", "call_ended_reason", "agent_description"],
    "/test_framework/v1/metrics/": ["name", "description", "type", "eval_type", "enum_values", "custom_code",
                                    "evaluation_trigger", "trigger_type", "evaluation_trigger_prompt", "model", "agent"],
    "/observability/v1/call-logs-external/{call}/mark_metric_vote/": ["metric_id", "vote", "thumbs_up", "feedback",
                                                                      "expected_value", "reviewer"],
    "/test_framework/test-sets/create_from_call_log/": ["call_log_id", "metrics", "name"],
    "/api/v1/agents/": ["name", "description", "project"],
    "/test_framework/v1/metrics/{metric}/revert/": ["version"],
}

bodies = st.sampled_from(sorted(FIELDS)).flatmap(
    lambda path: st.tuples(
        st.just(path),
        st.dictionaries(st.sampled_from(FIELDS[path]) | st.text(max_size=8), json_values, max_size=6) | json_values,
    )
)


@settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=bodies)
def test_write_endpoints_never_answer_500(api: Api, case: tuple[str, Any]) -> None:
    path, body = case
    if not hasattr(api, "_fuzz_ids"):
        agent = api.agent("fuzz")
        call = api.call(agent)
        metric = api.metric("fuzz metric")
        api._fuzz_ids = {"call": call["id"], "metric": metric["id"]}  # type: ignore[attr-defined]
    url = path.format(**api._fuzz_ids)  # type: ignore[attr-defined]
    r = api.post(url, json=body)
    assert r.status_code < 500, (url, body, r.text)
    if r.status_code >= 400:
        payload = r.json()
        assert payload["detail"] and isinstance(payload["errors"], list)
    r = api.patch(f"/test_framework/v1/metrics/{api._fuzz_ids['metric']}/", json=body)  # type: ignore[attr-defined]
    assert r.status_code < 500, (body, r.text)
