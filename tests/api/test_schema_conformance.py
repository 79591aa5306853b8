"""A bounded schemathesis run: every operation of the OpenAPI schema, a few generated examples each,
on both databases, with a real key. No answer may be a 5xx, and every status code, content type
and body must be one the schema declares.

It drives schemathesis through its Python API (operations as Hypothesis strategies) rather than its
pytest plugin, whose collection hooks do not work with this pytest."""

from __future__ import annotations

import json
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance, status_code_conformance

from tests.conftest import Api


@schemathesis.serializer("application/x-ndjson")
def _ndjson(ctx: Any, value: Any) -> bytes:
    """The bulk import's body: one JSON document per line."""
    if isinstance(value, bytes):
        return value
    items = value if isinstance(value, list) else [value]
    return "\n".join(json.dumps(v) for v in items).encode()


CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
EXAMPLES = 6


def test_every_operation_answers_as_documented(api: Api) -> None:
    agent = api.agent()  # a few objects to find, so generated ids sometimes hit something real
    api.call(agent, "c1")
    api.metric()
    schema = schemathesis.openapi.from_asgi("/openapi.json", api.client.app)
    seen: dict[str, int] = {"operations": 0, "requests": 0, "5xx": 0}
    for result in schema.get_all_operations():
        operation = result.ok()
        seen["operations"] += 1

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True,
                  database=None)
        def check(case: Any) -> None:
            seen["requests"] += 1
            response = case.call_and_validate(headers=api.headers, checks=CHECKS)
            seen["5xx"] += response.status_code >= 500

        check()
    documented = sum(len(item) for item in api.get("/openapi.json").json()["paths"].values())
    assert seen["operations"] == documented >= 50, seen  # every operation, none skipped
    assert seen["requests"] >= 5 * seen["operations"] and seen["5xx"] == 0, seen
    print(f"schemathesis: {seen}")
