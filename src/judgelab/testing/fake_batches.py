"""The providers' batch APIs, played by the fake model server.

OpenAI: `POST /v1/files` (purpose "batch", a JSONL of requests), `POST /v1/batches`,
`GET /v1/batches/{id}`, `GET /v1/files/{id}/content`. Anthropic: `POST /v1/messages/batches`,
`GET /v1/messages/batches/{id}`, `GET /v1/messages/batches/{id}/results`. A batch stays in progress
for `delay` seconds, then every request in it is answered by the server's script (so faults and
rules apply per request, as on the live endpoints). `error_rate` makes some requests fail inside a
completed batch; `expire_batches` makes the first N batches expire with only `expire_fraction` of
their requests answered, as a batch past its completion window does.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


@dataclass
class BatchStats:
    batches: int = 0
    requests: int = 0  # requests submitted in batches
    answered: int = 0
    errored: int = 0
    expired: int = 0
    polls: int = 0


@dataclass
class _Batch:
    id: str
    kind: str  # openai | anthropic
    requests: list[dict[str, Any]]
    created: float
    expire: bool
    results: list[dict[str, Any]] | None = None
    errors: list[dict[str, Any]] = field(default_factory=list)


class FakeBatches:
    def __init__(self, answer: Callable[[dict[str, Any]], tuple[str, str] | None], shapes: dict[str, Callable[..., dict[str, Any]]],
                 *, delay: float = 0.0, error_rate: float = 0.0, expire_batches: int = 0, expire_fraction: float = 0.5,
                 seed: int = 0) -> None:
        # answer(body) -> (text, finish reason), or None for a failed request.
        self.answer, self.shapes = answer, shapes
        self.delay, self.error_rate = delay, error_rate
        self.expire_batches, self.expire_fraction = expire_batches, expire_fraction
        self.stats = BatchStats()
        self._files: dict[str, bytes] = {}
        self._batches: dict[str, _Batch] = {}
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._n = 0

    def routes(self) -> list[Route]:
        return [
            Route("/v1/files", self._upload, methods=["POST"]),
            Route("/v1/files/{file_id}/content", self._content, methods=["GET"]),
            Route("/v1/batches", self._openai_create, methods=["POST"]),
            Route("/v1/batches/{batch_id}", self._openai_get, methods=["GET"]),
            Route("/v1/messages/batches", self._anthropic_create, methods=["POST"]),
            Route("/v1/messages/batches/{batch_id}", self._anthropic_get, methods=["GET"]),
            Route("/v1/messages/batches/{batch_id}/results", self._anthropic_results, methods=["GET"]),
        ]

    def _id(self, prefix: str) -> str:
        with self._lock:
            self._n += 1
            return f"{prefix}{self._n:06d}"

    def _new(self, kind: str, requests: list[dict[str, Any]]) -> _Batch:
        batch = _Batch(self._id("batch_" if kind == "openai" else "msgbatch_"), kind, requests, time.monotonic(),
                       expire=self.stats.batches < self.expire_batches)
        with self._lock:
            self.stats.batches += 1
            self.stats.requests += len(requests)
            self._batches[batch.id] = batch
        return batch

    def _process(self, batch: _Batch) -> bool:
        """Whether the batch has ended; answers its requests the first time it has."""
        with self._lock:
            self.stats.polls += 1
        if time.monotonic() - batch.created < self.delay:
            return False
        if batch.results is None:
            results, errors = [], []
            keep = int(len(batch.requests) * self.expire_fraction) if batch.expire else len(batch.requests)
            for i, req in enumerate(batch.requests):
                body = req["body"] if batch.kind == "openai" else req["params"]
                if i >= keep:
                    errors.append({"custom_id": req["custom_id"], "expired": True})
                    continue
                answered = None if self._random.random() < self.error_rate else self.answer(body)
                if answered is None:
                    errors.append({"custom_id": req["custom_id"], "expired": False})
                    continue
                text, finish = answered
                results.append({"custom_id": req["custom_id"],
                                "body": self.shapes[batch.kind](body, text, finish)})
            with self._lock:
                self.stats.answered += len(results)
                self.stats.expired += sum(e["expired"] for e in errors)
                self.stats.errored += sum(not e["expired"] for e in errors)
            batch.results, batch.errors = results, errors
        return True

    # OpenAI

    async def _upload(self, request: Request) -> Response:
        form = await request.form()
        upload = form.get("file")
        if upload is None or isinstance(upload, str) or form.get("purpose") != "batch":
            return JSONResponse({"error": {"message": "file and purpose=batch are required"}}, status_code=400)
        data = await upload.read()
        file_id = self._id("file-")
        self._files[file_id] = data
        return JSONResponse({"id": file_id, "object": "file", "bytes": len(data), "created_at": int(time.time()),
                             "filename": upload.filename or "batch.jsonl", "purpose": "batch", "status": "processed"})

    async def _content(self, request: Request) -> Response:
        data = self._files.get(request.path_params["file_id"])
        if data is None:
            return JSONResponse({"error": {"message": "no such file"}}, status_code=404)
        return Response(data, media_type="application/octet-stream")

    async def _openai_create(self, request: Request) -> Response:
        body = await request.json()
        data = self._files.get(body.get("input_file_id", ""))
        if data is None:
            return JSONResponse({"error": {"message": "no such input file"}}, status_code=400)
        lines = [json.loads(line) for line in data.decode().splitlines() if line.strip()]
        return JSONResponse(self._openai_object(self._new("openai", lines)))

    async def _openai_get(self, request: Request) -> Response:
        batch = self._batches.get(request.path_params["batch_id"])
        if batch is None:
            return JSONResponse({"error": {"message": "no such batch"}}, status_code=404)
        return JSONResponse(self._openai_object(batch))

    def _openai_object(self, batch: _Batch) -> dict[str, Any]:
        ended = self._process(batch)
        out: dict[str, Any] = {
            "id": batch.id, "object": "batch", "endpoint": "/v1/chat/completions", "errors": None,
            "input_file_id": "", "completion_window": "24h", "created_at": int(time.time()),
            "status": ("expired" if batch.expire else "completed") if ended else "in_progress",
            "output_file_id": None, "error_file_id": None, "metadata": None,
            "request_counts": {"total": len(batch.requests), "completed": 0, "failed": 0},
        }
        if ended and batch.results is not None:
            out["request_counts"].update(completed=len(batch.results), failed=len(batch.errors))
            if batch.results:
                out["output_file_id"] = f"{batch.id}-out"
                self._files[out["output_file_id"]] = "".join(json.dumps(
                    {"id": f"req-{i}", "custom_id": r["custom_id"], "response": {"status_code": 200, "body": r["body"]},
                     "error": None}) + "\n" for i, r in enumerate(batch.results)).encode()
            if batch.errors:
                out["error_file_id"] = f"{batch.id}-err"
                self._files[out["error_file_id"]] = "".join(json.dumps(
                    {"id": f"err-{i}", "custom_id": e["custom_id"], "response": None,
                     "error": {"code": "batch_expired", "message": "This request could not be executed before the "
                               "completion window expired."}} if e["expired"] else
                    {"id": f"err-{i}", "custom_id": e["custom_id"],
                     "response": {"status_code": 500, "body": {"error": {"message": "internal error"}}}, "error": None})
                    + "\n" for i, e in enumerate(batch.errors)).encode()
        return out

    # Anthropic

    async def _anthropic_create(self, request: Request) -> Response:
        body = await request.json()
        return JSONResponse(self._anthropic_object(self._new("anthropic", body.get("requests", [])), request))

    async def _anthropic_get(self, request: Request) -> Response:
        batch = self._batches.get(request.path_params["batch_id"])
        if batch is None:
            return JSONResponse({"type": "error", "error": {"type": "not_found_error", "message": "no such batch"}},
                                status_code=404)
        return JSONResponse(self._anthropic_object(batch, request))

    def _anthropic_object(self, batch: _Batch, request: Request) -> dict[str, Any]:
        ended = self._process(batch)
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        counts = {"processing": 0 if ended else len(batch.requests), "succeeded": 0, "errored": 0, "canceled": 0,
                  "expired": 0}
        if ended and batch.results is not None:
            counts.update(succeeded=len(batch.results), errored=sum(not e["expired"] for e in batch.errors),
                          expired=sum(e["expired"] for e in batch.errors))
        root = str(request.base_url).rstrip("/")
        return {"id": batch.id, "type": "message_batch", "processing_status": "ended" if ended else "in_progress",
                "request_counts": counts, "created_at": now, "expires_at": now, "ended_at": now if ended else None,
                "archived_at": None, "cancel_initiated_at": None,
                "results_url": f"{root}/v1/messages/batches/{batch.id}/results" if ended else None}

    async def _anthropic_results(self, request: Request) -> Response:
        batch = self._batches.get(request.path_params["batch_id"])
        if batch is None or not self._process(batch) or batch.results is None:
            return JSONResponse({"type": "error", "error": {"type": "not_found_error", "message": "not ended"}},
                                status_code=404)
        lines = [{"custom_id": r["custom_id"], "result": {"type": "succeeded", "message": r["body"]}}
                 for r in batch.results]
        lines += [{"custom_id": e["custom_id"], "result": {"type": "expired"}} if e["expired"] else
                  {"custom_id": e["custom_id"], "result": {"type": "errored", "error": {
                      "type": "error", "error": {"type": "api_error", "message": "internal error"}}}}
                  for e in batch.errors]
        return Response("".join(json.dumps(line) + "\n" for line in lines), media_type="application/binary")
