"""The parent's side of a sandboxed run: limits, the concurrency cap, the conversation, the verdict.

Layers, from the kernel up: the backend's boundary (bubblewrap by default, `backends.py`);
resource limits on the whole process tree (address space, CPU seconds, file size, open files, no
core dumps); an audit hook in the child whose policy the metric cannot reach (`child.py`); a wall
clock and an output cap enforced here, which kill the whole process group. Nested judge calls are
served here over the child's stdin/stdout, so the child never holds a key, and each one is counted
against a declared maximum per evaluation. A process-wide cap on sandboxes running at once queues
the rest (never fails them), so the totals of memory, CPU and scratch space are bounded too.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import shutil
import signal
import threading
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from judgelab.evaluation.sandbox.backends import Backend, backend

# (prompt, eval_type, enum_values, transcript, context): with `transcript`, the judge sees that text
# (an excerpt the metric chose) in place of the whole call, and `context` in place of the agent's
# description.
NestedJudge = Callable[[str, str, "list[str] | None", "str | None", "str | None"], Awaitable[dict[str, Any]]]


@dataclass
class Limits:
    wall_seconds: float = 10.0
    cpu_seconds: int = 5
    memory_bytes: int = 512 * 1024 * 1024
    file_bytes: int = 10 * 1024 * 1024
    scratch_bytes: int = 16 * 1024 * 1024  # the bwrap backend's tmpfs
    output_bytes: int = 1024 * 1024
    nested_calls: int = 5  # LLM requests nested judge calls may make per evaluation, re-asks included


@dataclass
class SandboxResult:
    result: Any = None
    explanation: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    output: str = ""
    nested_calls: int = 0


class Gate:
    """A counting semaphore shared by every event loop of the process (the API's, DBOS's): a
    waiter is woken on its own loop. First come, first served."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.in_use = 0
        self.peak = 0
        self._lock = threading.Lock()
        self._waiters: deque[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = deque()

    async def __aenter__(self) -> Gate:
        loop = asyncio.get_running_loop()
        with self._lock:
            if self.in_use < self.size and not self._waiters:
                self._take()
                return self
            waiter: asyncio.Future[None] = loop.create_future()
            self._waiters.append((loop, waiter))
        try:
            await waiter
        except asyncio.CancelledError:
            with self._lock:
                if waiter.done() and not waiter.cancelled():
                    self._release_locked()  # handed a slot as it was cancelled: pass it on
                else:
                    self._waiters = deque(w for w in self._waiters if w[1] is not waiter)
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        with self._lock:
            self._release_locked()

    def _take(self) -> None:
        self.in_use += 1
        self.peak = max(self.peak, self.in_use)

    def _release_locked(self) -> None:
        self.in_use -= 1
        while self._waiters and self.in_use < self.size:
            loop, waiter = self._waiters.popleft()
            if waiter.done():
                continue
            self._take()
            loop.call_soon_threadsafe(_grant, waiter, self)


def _grant(waiter: asyncio.Future[None], gate: Gate) -> None:
    if waiter.cancelled():  # cancelled between the hand-over and now: give the slot back
        with gate._lock:
            gate._release_locked()
    else:
        waiter.set_result(None)


@dataclass
class Sandbox:
    """The process's sandbox: one backend, its limits, its cap."""

    backend: Backend
    limits: Limits
    gate: Gate


_current: Sandbox | None = None
_current_lock = threading.Lock()


def configure(name: str | None = None, *, limits: Limits | None = None, concurrency: int | None = None) -> Sandbox:
    """Set the process's sandbox (by default from JUDGELAB_SANDBOX* settings)."""
    global _current
    from judgelab.config import Settings

    settings = Settings() if name is None or limits is None or concurrency is None else None
    name = name or (settings.sandbox if settings else "bwrap")
    size = concurrency or (settings.resolved_sandbox_concurrency if settings else 4)
    if limits is None:
        assert settings is not None
        limits = Limits(wall_seconds=settings.sandbox_wall_seconds, cpu_seconds=settings.sandbox_cpu_seconds,
                        memory_bytes=settings.sandbox_memory_mb << 20,
                        scratch_bytes=max(1 << 20, (settings.sandbox_scratch_total_mb << 20) // size),
                        nested_calls=settings.sandbox_max_judge_calls)
    with _current_lock:
        _current = Sandbox(backend(name), limits, Gate(size))
    return _current


def current() -> Sandbox:
    with _current_lock:
        found = _current
    return found if found is not None else configure()


def _isolate(limits: Limits) -> Callable[[], None]:
    def preexec() -> None:  # runs in the child between fork and exec, before the backend starts
        os.setsid()
        for res, soft, hard in (
            (resource.RLIMIT_AS, limits.memory_bytes, limits.memory_bytes),
            # SIGXCPU at the soft limit names the cause; SIGKILL a second later if it is ignored.
            (resource.RLIMIT_CPU, limits.cpu_seconds, limits.cpu_seconds + 1),
            (resource.RLIMIT_FSIZE, limits.file_bytes, limits.file_bytes),
            (resource.RLIMIT_NOFILE, 64, 64),
            (resource.RLIMIT_CORE, 0, 0),
        ):
            resource.setrlimit(res, (soft, hard))

    return preexec


async def run_custom_code(
    code: str, data: dict[str, Any], *, nested_judge: NestedJudge | None = None, limits: Limits | None = None,
    sandbox: Sandbox | None = None,
) -> SandboxResult:
    """Run metric (or trigger) code with `data`; every failure comes back as `error`, never raised."""
    box = sandbox or current()
    limits = limits or box.limits
    problem = box.backend.problem()
    if problem is not None:
        return SandboxResult(error=problem)
    async with box.gate:  # queued, not failed, when the cap is reached; the wall clock starts after
        return await _run(box.backend, code, data, nested_judge, limits)


async def _run(back: Backend, code: str, data: dict[str, Any], nested_judge: NestedJudge | None,
               limits: Limits) -> SandboxResult:
    launch = back.launch(limits.scratch_bytes)
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": launch.scratch, "TMPDIR": launch.scratch}
    out = SandboxResult()
    try:
        proc = await asyncio.create_subprocess_exec(
            *launch.argv, cwd=launch.host_scratch or "/", env=env, stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, preexec_fn=_isolate(limits),
            limit=limits.output_bytes, pass_fds=launch.pass_fds,
        )
    except OSError as exc:
        out.error = f"the sandbox could not start: {exc}"
        _cleanup(launch.host_scratch)
        return out
    finally:
        for fd in launch.close_after:
            os.close(fd)
    answered = False
    try:
        policy = {"scratch": launch.scratch, "readable": launch.readable}
        answered = await asyncio.wait_for(_converse(proc, code, data, policy, nested_judge, limits, out),
                                          limits.wall_seconds)
        if answered:  # let it exit on its own; whatever is left after a moment is killed below
            await asyncio.wait_for(proc.wait(), 2)
    except TimeoutError:
        if not answered:
            out.error = f"timed out after {limits.wall_seconds:g} s of wall time"
    except (ValueError, asyncio.LimitOverrunError):
        out.error = f"wrote more than {limits.output_bytes} bytes of output"
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # the whole group: nothing it started may outlive it
        except ProcessLookupError:
            pass
        await proc.wait()
        if out.error and "before answering" in out.error and proc.stderr is not None:
            err = (await proc.stderr.read(2000)).decode(errors="replace").strip()
            if err:
                out.error += f" ({err.splitlines()[-1][:300]})"
        _cleanup(launch.host_scratch)
    return out


def _cleanup(host_scratch: str | None) -> None:
    if host_scratch:
        shutil.rmtree(host_scratch, ignore_errors=True)


async def _converse(
    proc: asyncio.subprocess.Process, code: str, data: dict[str, Any], policy: dict[str, Any],
    nested_judge: NestedJudge | None, limits: Limits, out: SandboxResult,
) -> bool:
    """Serve the child until it answers; True when it did (a result or its own error report)."""
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write((json.dumps({"code": code, "data": data, "policy": policy}, default=str) + "\n").encode())
    await proc.stdin.drain()
    while True:
        line = await proc.stdout.readline()
        if not line:
            await proc.wait()
            out.error = _death(proc.returncode or 0, limits)
            return False
        try:
            msg = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
            out.error = "the sandbox protocol was broken (unreadable message)"
            return False
        if not isinstance(msg, dict):  # the child is untrusted: a list or a number is not a message
            out.error = f"the sandbox protocol was broken (a {type(msg).__name__} where a message belongs)"
            return False
        kind = msg.get("type")
        if kind == "judge":
            reply = await _nested(msg, nested_judge, limits, out)
            proc.stdin.write((json.dumps(reply, default=str) + "\n").encode())
            await proc.stdin.drain()
        elif kind == "error":
            out.error, out.output = f"the metric code raised: {str(msg.get('error'))[:2000]}", str(msg.get("output", ""))
            return True
        elif kind == "done":
            out.output = str(msg.get("output", ""))
            _accept(msg, out)
            return True
        else:
            out.error = f"the sandbox protocol was broken (unknown message {str(kind)[:50]!r})"
            return False


async def _nested(msg: dict[str, Any], nested_judge: NestedJudge | None, limits: Limits, out: SandboxResult) -> dict[str, Any]:
    if nested_judge is None:
        return {"error": "no judge is available to this metric"}
    if out.nested_calls >= limits.nested_calls:
        return {"error": f"at most {limits.nested_calls} nested judge calls per evaluation"}
    out.nested_calls += 1
    enum_values = msg.get("enum_values")
    if enum_values is not None and not (isinstance(enum_values, list) and all(isinstance(v, str) for v in enum_values)):
        return {"error": "enum_values must be a list of strings"}
    try:
        transcript, context = msg.get("transcript"), msg.get("context")
        return await nested_judge(str(msg.get("prompt", "")), str(msg.get("eval_type") or "binary_qualitative"),
                                  enum_values, None if transcript is None else str(transcript),
                                  None if context is None else str(context))
    except Exception as exc:  # noqa: BLE001 - the child gets the reason, the parent keeps running
        return {"error": str(exc)[:500]}


def _accept(msg: dict[str, Any], out: SandboxResult) -> None:
    if not msg.get("has_result"):
        out.error = "the metric code did not set _result"
        return
    result, explanation, extra = msg.get("result"), msg.get("explanation"), msg.get("extra")
    if not (result is None or isinstance(result, (bool, int, float, str))):
        out.error = f"_result must be a bool, number, string or None, got {type(result).__name__}"
    elif not isinstance(explanation, str):
        out.error = "the metric code did not set _explanation to a string"
    elif extra is not None and not isinstance(extra, dict):
        out.error = "_extra must be a dict"
    else:
        out.result, out.explanation, out.extra = result, explanation, extra or {}


def _death(returncode: int, limits: Limits) -> str:
    if returncode > 128 and returncode - 128 in signal.valid_signals():
        returncode = 128 - returncode  # bubblewrap reports its child's death by a signal as 128 + n
    if returncode < 0:
        sig = signal.Signals(-returncode).name
        if sig == "SIGXCPU":
            return f"used more than {limits.cpu_seconds} s of CPU"
        if sig == "SIGXFSZ":
            return f"wrote a file larger than {limits.file_bytes} bytes"
        return f"the sandbox process was killed by {sig}"
    if returncode == 1:
        return f"the sandbox process failed (out of memory? the limit is {limits.memory_bytes // 2**20} MB)"
    return f"the sandbox process exited with status {returncode} before answering"
