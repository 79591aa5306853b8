"""Client and AsyncClient: one method per API operation, defined once for both.

Each method only builds a request; `_send` (blocking in `Client`, a coroutine in `AsyncClient`)
sends it. That is why the methods are declared on a generic base: `Client.get_call` returns a dict,
`AsyncClient.get_call` an awaitable of one, from the same definition.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Mapping
from datetime import datetime
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import httpx2

from judgelab import __version__

R = TypeVar("R")
JSON = dict[str, Any]
FINISHED = frozenset({"completed", "failed", "stopped", "cancelled", "needs_input"})
DEFAULT_URL = "http://127.0.0.1:8000"


class ApiError(Exception):
    """The server said no. `detail` is its sentence; `errors` names the fields."""

    def __init__(self, status: int, detail: str, errors: list[dict[str, Any]] | None = None, body: Any = None) -> None:
        super().__init__(f"{status}: {detail}")
        self.status = status
        self.detail = detail
        self.errors = errors or []
        self.body = body


def _decode(response: httpx2.Response) -> JSON:
    if response.status_code == 204:
        return {}
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code >= 400:
        if isinstance(body, dict):
            detail = body.get("detail")
            text = detail if isinstance(detail, str) else str(detail or body)
            raise ApiError(response.status_code, text, body.get("errors"), body)
        raise ApiError(response.status_code, response.text[:500] or response.reason_phrase)
    if not isinstance(body, dict):
        raise ApiError(response.status_code, "the server answered something that is not a JSON object")
    return body


def _settings(base_url: str | None, api_key: str | None) -> tuple[str, str]:
    url = base_url or os.environ.get("JUDGELAB_URL") or DEFAULT_URL
    key = api_key or os.environ.get("JUDGELAB_API_KEY") or ""
    if not key:
        raise ValueError("no API key: pass api_key= or set JUDGELAB_API_KEY")
    return url.rstrip("/"), key


def _headers(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", "User-Agent": f"judgelab-client/{__version__}"}


def _clean(values: Mapping[str, Any]) -> JSON:
    """Drop unset arguments, and send times as ISO 8601."""
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in values.items() if v is not None}


class _Endpoints(Generic[R]):
    def _send(self, method: str, path: str, *, params: Mapping[str, Any] | None = None, json: Any = None) -> R:
        raise NotImplementedError

    # calls
    def list_calls(self, *, agent: int | None = None, search: str | None = None, timestamp__gte: datetime | str | None = None,
                   timestamp__lte: datetime | str | None = None, page: int = 1, page_size: int = 50) -> R:
        """One page of calls, newest first: `{count, next, previous, results}` (count is exact)."""
        return self._send("GET", "/observability/v1/call-logs/", params=_clean(locals() | {"self": None}))

    def get_call(self, call_id: int) -> R:
        """A call with its transcript and every metric result on it."""
        return self._send("GET", f"/observability/v1/call-logs/{call_id}/")

    def observe(self, call: Mapping[str, Any]) -> R:
        """Ingest one call (a `call_id` sent again updates that call)."""
        return self._send("POST", "/observability/v1/observe/", json=dict(call))

    def list_agents(self, *, page: int = 1, page_size: int = 200) -> R:
        return self._send("GET", "/api/v1/agents/", params={"page": page, "page_size": page_size})

    def create_agent(self, name: str, description: str = "") -> R:
        return self._send("POST", "/api/v1/agents/", json={"name": name, "description": description})

    # metrics
    def list_metrics(self, *, agent: int | None = None, page: int = 1, page_size: int = 50) -> R:
        return self._send("GET", "/test_framework/v1/metrics/", params=_clean(locals() | {"self": None}))

    def get_metric(self, metric_id: int) -> R:
        return self._send("GET", f"/test_framework/v1/metrics/{metric_id}/")

    def create_metric(self, metric: Mapping[str, Any]) -> R:
        """Fields as in the API: name, description, eval_type, evaluation_trigger, ... (version 1)."""
        return self._send("POST", "/test_framework/v1/metrics/", json=dict(metric))

    def update_metric(self, metric_id: int, changes: Mapping[str, Any]) -> R:
        """PATCH; a change to judged content makes a new version (`new_version` in the answer)."""
        return self._send("PATCH", f"/test_framework/v1/metrics/{metric_id}/", json=dict(changes))

    def metric_versions(self, metric_id: int) -> R:
        return self._send("GET", f"/test_framework/v1/metrics/{metric_id}/versions/")

    def revert_metric(self, metric_id: int, version: int) -> R:
        return self._send("POST", f"/test_framework/v1/metrics/{metric_id}/revert/", json={"version": version})

    def get_feedback(self, metric_id: int, *, page: int = 1, page_size: int = 50) -> R:
        """Current votes on a metric with `progress` toward a labs run (6 needed)."""
        return self._send("GET", f"/test_framework/v1/metrics/{metric_id}/feedback/",
                          params={"page": page, "page_size": page_size})

    # evaluation
    def estimate_evaluation(self, metrics: list[int], call_logs: list[int] | None = None, **filters: Any) -> R:
        """Calls, evaluations, tokens and money an evaluation would take; nothing is run."""
        return self._send("POST", "/api/v1/evaluations/estimate/", json=_clean({"metrics": metrics, "call_logs": call_logs, **filters}))

    def evaluate(self, metrics: list[int], call_logs: list[int] | None = None, *, confirm: bool = False,
                 force: bool = False, batch: bool = False, **filters: Any) -> R:
        """Start an evaluation job (202). Above 100 calls the server wants `confirm=True` (409 otherwise);
        `batch=True` sends it through the providers' batch APIs (half price, within 24 hours)."""
        body = _clean({"metrics": metrics, "call_logs": call_logs, "confirm": confirm, "force": force,
                       "batch": batch or None, **filters})
        return self._send("POST", "/observability/v1/call-logs/evaluate_metrics/", json=body)

    def rerun_evaluation(self, metrics: list[int], call_logs: list[int] | None = None, *, confirm: bool = False,
                         force: bool = False, **filters: Any) -> R:
        body = _clean({"metrics": metrics, "call_logs": call_logs, "confirm": confirm, "force": force, **filters})
        return self._send("POST", "/observability/v1/call-logs/rerun_evaluation/", json=body)

    def get_job(self, job_id: str) -> R:
        return self._send("GET", f"/api/v1/jobs/{job_id}/")

    def cancel_job(self, job_id: str) -> R:
        return self._send("POST", f"/api/v1/jobs/{job_id}/cancel/")

    # feedback and test sets
    def mark_metric_vote(self, call_id: int, metric_id: int, vote: str, *, feedback: str = "",
                         expected_value: Any = None, reviewer: str | None = None, source: str | None = None,
                         audit_sample_id: int | None = None) -> R:
        """`vote` is agree or disagree; say why in `feedback` and give `expected_value` when you disagree.
        `source` says how the call was picked (review_queue, random_audit, validation_flip, test_set, manual)."""
        body = _clean({"metric_id": metric_id, "vote": vote, "feedback": feedback, "expected_value": expected_value,
                       "reviewer": reviewer, "source": source, "audit_sample_id": audit_sample_id})
        return self._send("POST", f"/observability/v1/call-logs/{call_id}/mark_metric_vote/", json=body)

    def audit_sample_status(self, sample_id: int) -> R:
        return self._send("GET", f"/api/v1/audit_samples/{sample_id}/")

    def audit_sample(self, metric_id: int, size: int, *, seed: int | None = None, blind: bool = True) -> R:
        """Draw `size` unlabelled calls at random (stratified by the current verdict) for blind review:
        the labels a labs verdict of `improved` rests on."""
        return self._send("POST", f"/api/v1/metrics/{metric_id}/audit_sample/",
                          json=_clean({"size": size, "seed": seed, "blind": blind}))

    def create_test_set_from_call_log(self, body: Mapping[str, Any]) -> R:
        return self._send("POST", "/test_framework/test-sets/create_from_call_log/", json=dict(body))

    # labs
    def misalignment(self) -> R:
        """Metrics worst first, each with its disagreement interval and diagnosis."""
        return self._send("GET", "/api/v1/metrics/misalignment/")

    def review_queue(self, metric_id: int, *, limit: int = 50) -> R:
        return self._send("GET", f"/api/v1/metrics/{metric_id}/review_queue/", params={"limit": limit})

    def pass_rate(self, metric_id: int) -> R:
        return self._send("GET", f"/api/v1/metrics/{metric_id}/pass_rate/")

    def start_labs(self, metric_id: int, **options: Any) -> R:
        """process_feedbacks: answers `{progress_id}`; nothing is applied."""
        return self._send("POST", "/test_framework/metric-reviews/process_feedbacks/",
                          json=_clean({"metric_id": metric_id, **options}))

    def labs_progress(self, progress_id: str) -> R:
        return self._send("GET", f"/api/v1/labs/{quote(progress_id, safe='')}/")

    def labs_progress_seed(self, progress_id: str) -> R:
        """The same run in the seed platform's vocabulary (status success / error / in_progress, `output`)."""
        return self._send("GET", "/test_framework/metric-reviews/process_feedbacks_progress/",
                          params={"progress_id": progress_id})

    def run_reviews(self, metric_id: int, *, confirm: bool = False) -> R:
        """Re-score the current version on the labelled calls: answers `{progress_id}`."""
        return self._send("POST", f"/test_framework/v1/metrics/{metric_id}/run_reviews/", json={"confirm": confirm})

    def run_reviews_progress(self, progress_id: str) -> R:
        return self._send("GET", "/test_framework/metric-reviews/run_reviews_progress/", params={"progress_id": progress_id})

    def answer_labs(self, progress_id: str, answer: Any = None, *, skip: bool = False) -> R:
        body: JSON = {"progress_id": progress_id, **({"action": "skip"} if skip else {"answer": answer})}
        return self._send("POST", "/test_framework/metric-reviews/process_feedbacks_answer/", json=body)

    def validate_metric(self, metric_id: int, *, description: str | None = None, sample: int = 20,
                        confirm: bool = False, max_judge_calls: int | None = None) -> R:
        body = _clean({"description": description, "sample": sample, "confirm": confirm, "max_judge_calls": max_judge_calls})
        return self._send("POST", f"/api/v1/metrics/{metric_id}/validate/", json=body)

    def get_validation(self, validation_id: str) -> R:
        return self._send("GET", f"/api/v1/validations/{validation_id}/")

    def mark_flip(self, validation_id: str, index: int, right: bool, *, feedback: str = "") -> R:
        return self._send("POST", f"/api/v1/validations/{validation_id}/flips/{index}/mark/",
                          json={"right": right, "feedback": feedback})

    def to_custom_code(self, metric_id: int, *, max_judge_calls: int = 200) -> R:
        return self._send("POST", f"/api/v1/metrics/{metric_id}/to_custom_code/", json={"max_judge_calls": max_judge_calls})

    def get_conversion(self, conversion_id: str) -> R:
        return self._send("GET", f"/api/v1/conversions/{conversion_id}/")


class Client(_Endpoints[JSON]):
    """Blocking client. Use as a context manager, or call `close()`."""

    def __init__(self, base_url: str | None = None, api_key: str | None = None, *, timeout: float = 60.0,
                 transport: httpx2.BaseTransport | None = None) -> None:
        url, key = _settings(base_url, api_key)
        self._http = httpx2.Client(base_url=url, headers=_headers(key), timeout=timeout, transport=transport)

    def _send(self, method: str, path: str, *, params: Mapping[str, Any] | None = None, json: Any = None) -> JSON:
        return _decode(self._http.request(method, path, params=params, json=json))

    def wait_job(self, job_id: str, *, timeout: float = 600.0, interval: float = 0.5) -> JSON:
        """Poll a job until it is finished; raises TimeoutError past `timeout` seconds."""
        return self._wait(lambda: self.get_job(job_id), timeout, interval)

    def wait_labs(self, progress_id: str, *, timeout: float = 1800.0, interval: float = 1.0) -> JSON:
        """Poll a labs run until it completes, fails or asks a question (`needs_input`)."""
        return self._wait(lambda: self.labs_progress(progress_id), timeout, interval)

    def _wait(self, poll: Any, timeout: float, interval: float) -> JSON:
        deadline = time.monotonic() + timeout
        while True:
            state: JSON = poll()
            if state.get("status") in FINISHED:
                return state
            if time.monotonic() > deadline:
                raise TimeoutError(f"still {state.get('status')} after {timeout:.0f} s")
            time.sleep(interval)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncClient(_Endpoints[Awaitable[JSON]]):
    """The same operations as coroutines (`await client.get_call(1)`)."""

    def __init__(self, base_url: str | None = None, api_key: str | None = None, *, timeout: float = 60.0,
                 transport: httpx2.AsyncBaseTransport | None = None) -> None:
        url, key = _settings(base_url, api_key)
        self._http = httpx2.AsyncClient(base_url=url, headers=_headers(key), timeout=timeout, transport=transport)

    async def _send(self, method: str, path: str, *, params: Mapping[str, Any] | None = None, json: Any = None) -> JSON:  # type: ignore[override]
        return _decode(await self._http.request(method, path, params=params, json=json))

    async def wait_job(self, job_id: str, *, timeout: float = 600.0, interval: float = 0.5) -> JSON:
        return await self._wait(lambda: self.get_job(job_id), timeout, interval)

    async def wait_labs(self, progress_id: str, *, timeout: float = 1800.0, interval: float = 1.0) -> JSON:
        return await self._wait(lambda: self.labs_progress(progress_id), timeout, interval)

    async def _wait(self, poll: Any, timeout: float, interval: float) -> JSON:
        deadline = time.monotonic() + timeout
        while True:
            state: JSON = await poll()
            if state.get("status") in FINISHED:
                return state
            if time.monotonic() > deadline:
                raise TimeoutError(f"still {state.get('status')} after {timeout:.0f} s")
            await asyncio.sleep(interval)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
