"""A local OpenAI-compatible (and Anthropic-compatible) HTTP server that plays the model.

The real `openai` SDK talks to it over a real socket. It answers from a script (a queue or a rule
over the request), with configurable latency, a concurrency limit answered with 429 past it, and
injected faults: 500s, 429s, timeouts, malformed JSON bodies and truncated answers. It also plays
both providers' batch APIs (`fake_batches.py`).

    with FakeOpenAIServer(rule=lambda body: '{"result": true, "explanation": "ok"}') as server:
        provider = OpenAIProvider(base_url=server.base_url, api_key="test")
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from judgelab.testing.fake_batches import FakeBatches

FAULTS = ("429", "500", "timeout", "malformed", "truncated")


@dataclass
class Fault:
    """A scripted failure in place of an answer: one of FAULTS."""

    kind: str

    def __post_init__(self) -> None:
        if self.kind not in FAULTS:
            raise ValueError(f"fault must be one of {FAULTS}")


@dataclass
class Stats:
    requests: int = 0
    answered: int = 0
    rejected_busy: int = 0
    faults: dict[str, int] = field(default_factory=dict)
    max_in_flight: int = 0
    bodies: list[dict[str, Any]] = field(default_factory=list)


class FakeOpenAIServer:
    def __init__(
        self,
        *,
        answers: Iterable[str | Fault] | None = None,
        rule: Callable[[dict[str, Any]], str | Fault] | None = None,
        latency: float = 0.0,
        max_concurrency: int | None = None,
        fault_rates: dict[str, float] | None = None,
        timeout_seconds: float = 30.0,
        retry_after: float = 0.05,
        seed: int = 0,
        keep_bodies: bool = True,
        port: int | None = None,
        prefix_cache: bool = False,
        batch_delay: float = 0.0,
        batch_error_rate: float = 0.0,
        expire_batches: int = 0,
    ) -> None:
        self.queue: deque[str | Fault] = deque(answers or [])
        self.rule = rule
        self.latency = latency
        self.max_concurrency = max_concurrency
        self.fault_rates = fault_rates or {}
        self.timeout_seconds = timeout_seconds
        self.retry_after = retry_after
        self.keep_bodies = keep_bodies
        # Play the providers' prompt caching: OpenAI's automatic prefix cache (1 024-token minimum,
        # 128-token steps) and Anthropic's cache_control breakpoints, reported in the usage.
        self.prefix_cache = prefix_cache
        self._prefixes: set[str] = set()
        self.stats = Stats()
        self._random = random.Random(seed)
        self._in_flight = 0
        self._lock = threading.Lock()
        # The batch APIs answer each request with the same script (faults become failed requests).
        self.batches = FakeBatches(self._batch_answer, {"openai": _completion, "anthropic": _message},
                                   delay=batch_delay, error_rate=batch_error_rate, expire_batches=expire_batches,
                                   seed=seed)
        app = Starlette(routes=[
            *self.batches.routes(),
            Route("/v1/chat/completions", self._complete, methods=["POST"]),
            Route("/v1/messages", self._messages, methods=["POST"]),
            Route("/stats", self._stats, methods=["GET"]),
        ])
        self._server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port or _free_port(),
                                                     log_level="warning", lifespan="off"))
        self._thread = threading.Thread(target=self._server.run, name="fake-openai", daemon=True)

    @property
    def base_url(self) -> str:
        """For the OpenAI SDK."""
        return f"http://127.0.0.1:{self._server.config.port}/v1"

    @property
    def root_url(self) -> str:
        """For the Anthropic SDK, which adds /v1 itself."""
        return f"http://127.0.0.1:{self._server.config.port}"

    def __enter__(self) -> FakeOpenAIServer:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("fake OpenAI server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(10)

    def _next(self, body: dict[str, Any]) -> str | Fault:
        with self._lock:
            for kind, rate in self.fault_rates.items():
                if self._random.random() < rate:
                    return Fault(kind)
            if self.queue:
                return self.queue.popleft()
        if self.rule is not None:
            return self.rule(body)
        return Fault("500")

    def _batch_answer(self, body: dict[str, Any]) -> tuple[str, str] | None:
        if self.keep_bodies:
            self.stats.bodies.append(body)
        answer = self._next(body)
        if isinstance(answer, Fault):
            return None if answer.kind != "truncated" else ('{"result": tr', "length")
        return answer, "stop"

    def _cached(self, body: dict[str, Any], anthropic: bool) -> tuple[int, int]:
        """(tokens read from the simulated cache, tokens written to it) for this request."""
        if anthropic:
            text, upto = json.dumps(body.get("system", "")), None
            for m in body.get("messages", []):
                for block in m["content"] if isinstance(m.get("content"), list) else [{"text": m.get("content", "")}]:
                    text += block.get("text", "")
                    if isinstance(block, dict) and block.get("cache_control"):
                        upto = len(text)
            if upto is None or upto // 4 < 1024:
                return 0, 0
            key = hashlib.sha256(text[:upto].encode()).hexdigest()
            if key in self._prefixes:
                return upto // 4, 0
            self._prefixes.add(key)
            return 0, upto // 4
        text = json.dumps(body.get("messages", []))
        best = 0
        for end in range(512, len(text) + 1, 512):  # 128-token steps, at 4 characters a token
            key = hashlib.sha256(text[:end].encode()).hexdigest()
            if key in self._prefixes:
                best = end // 4
            self._prefixes.add(key)
        return (best, 0) if best >= 1024 else (0, 0)

    async def _stats(self, _request: Request) -> Response:
        with self._lock:
            return JSONResponse({"requests": self.stats.requests, "answered": self.stats.answered,
                                 "rejected_busy": self.stats.rejected_busy, "faults": dict(self.stats.faults),
                                 "max_in_flight": self.stats.max_in_flight})

    async def _complete(self, request: Request) -> Response:
        return await self._serve(request, _completion)

    async def _messages(self, request: Request) -> Response:
        return await self._serve(request, _message)

    async def _serve(self, request: Request, shape: Callable[[dict[str, Any], str, str], dict[str, Any]]) -> Response:
        with self._lock:
            self.stats.requests += 1
            if self.max_concurrency is not None and self._in_flight >= self.max_concurrency:
                self.stats.rejected_busy += 1
                return _error(429, "too many concurrent requests", {"retry-after": str(self.retry_after)})
            self._in_flight += 1
            self.stats.max_in_flight = max(self.stats.max_in_flight, self._in_flight)
        try:
            body = await request.json()
            if self.keep_bodies:
                self.stats.bodies.append(body)
            answer = self._next(body)
            if self.latency:
                await asyncio.sleep(self.latency)
            if isinstance(answer, Fault):
                with self._lock:
                    self.stats.faults[answer.kind] = self.stats.faults.get(answer.kind, 0) + 1
                return await self._fault(answer, body, shape)
            with self._lock:
                self.stats.answered += 1
                cached = self._cached(body, shape is _message) if self.prefix_cache else (0, 0)
            out = shape(body, answer, "stop")
            _report_cache(out, cached)
            return JSONResponse(out)
        finally:
            with self._lock:
                self._in_flight -= 1

    async def _fault(self, fault: Fault, body: dict[str, Any], shape: Callable[[dict[str, Any], str, str], dict[str, Any]]) -> Response:
        if fault.kind == "429":
            return _error(429, "rate limited", {"retry-after": str(self.retry_after)})
        if fault.kind == "500":
            return _error(500, "internal error")
        if fault.kind == "timeout":
            await asyncio.sleep(self.timeout_seconds)
            return _error(504, "timed out")
        if fault.kind == "malformed":
            return Response('{"id": "x", "choices": [', media_type="application/json")
        return JSONResponse(shape(body, '{"result": tr', "length"))


def _completion(body: dict[str, Any], content: str, finish_reason: str) -> dict[str, Any]:
    prompt = json.dumps(body.get("messages", []))
    return {
        "id": f"chatcmpl-fake-{random.randrange(10**9)}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model", "fake"),
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": finish_reason}],
        "usage": {
            "prompt_tokens": len(prompt) // 4 + 1,
            "completion_tokens": len(content) // 4 + 1,
            "total_tokens": len(prompt) // 4 + len(content) // 4 + 2,
        },
    }


def _message(body: dict[str, Any], content: str, finish_reason: str) -> dict[str, Any]:
    prompt = json.dumps([body.get("system", ""), body.get("messages", [])])
    return {
        "id": f"msg_fake_{random.randrange(10**9)}",
        "type": "message",
        "role": "assistant",
        "model": body.get("model", "fake"),
        "content": [{"type": "text", "text": content}],
        "stop_reason": "end_turn" if finish_reason == "stop" else "max_tokens",
        "stop_sequence": None,
        "usage": {"input_tokens": len(prompt) // 4 + 1, "output_tokens": len(content) // 4 + 1},
    }


def _report_cache(out: dict[str, Any], cached: tuple[int, int]) -> None:
    read, written = cached
    usage = out.get("usage") or {}
    if "prompt_tokens" in usage:
        usage["prompt_tokens_details"] = {"cached_tokens": read}
    elif read or written:
        # Anthropic's input_tokens leave out what was read from or written to the cache.
        usage["input_tokens"] = max(1, usage["input_tokens"] - read - written)
        usage["cache_read_input_tokens"] = read
        usage["cache_creation_input_tokens"] = written


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": "fake_error", "code": status}}, status_code=status, headers=headers)


def schema_answer(body: dict[str, Any]) -> str | None:
    """A valid object for a request's JSON schema (`response_format`), so clients that ask for
    structured output of their own shape (a peer's classifier, say) get an answer they can read."""
    fmt = body.get("response_format") or {}
    schema = (fmt.get("json_schema") or {}).get("schema") if fmt.get("type") == "json_schema" else None
    if not isinstance(schema, dict):
        return None

    def value(prop: dict[str, Any]) -> Any:
        if prop.get("enum"):
            return prop["enum"][0]
        kind = prop.get("type")
        kind = kind[0] if isinstance(kind, list) else kind
        return {"boolean": True, "integer": 1, "number": 1.0, "array": [], "object": {}}.get(
            str(kind), "the fake model's answer")

    return json.dumps({name: value(prop) for name, prop in (schema.get("properties") or {}).items()})


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main(argv: list[str] | None = None) -> None:
    """Run the fake model as a process: `python -m judgelab.testing.fake_openai --port 8100 --latency 0.2`."""
    import argparse

    parser = argparse.ArgumentParser(description="A fake OpenAI/Anthropic-compatible model server for tests and benchmarks")
    parser.add_argument("--port", type=int, default=8100)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument("--max-concurrency", type=int, default=None, help="answer 429 past this many in flight")
    parser.add_argument("--fault", action="append", default=[], metavar="KIND=RATE",
                        help=f"inject a fault at random, KIND one of {', '.join(FAULTS)} (repeatable)")
    parser.add_argument("--answer", default='{"result": true, "explanation": "the fake model always agrees"}')
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--prefix-cache", action="store_true", help="simulate the providers' prompt caching in usage")
    parser.add_argument("--batch-delay", type=float, default=0.0, help="seconds a batch stays in progress")
    args = parser.parse_args(argv)
    rates = {kind: float(rate) for kind, rate in (f.split("=", 1) for f in args.fault)}
    server = FakeOpenAIServer(rule=lambda body: schema_answer(body) or args.answer, latency=args.latency, max_concurrency=args.max_concurrency,
                              fault_rates=rates, seed=args.seed, keep_bodies=False, port=args.port,
                              prefix_cache=args.prefix_cache, batch_delay=args.batch_delay)
    print(f"fake model on {server.base_url}", flush=True)
    server._server.run()


if __name__ == "__main__":
    main()
