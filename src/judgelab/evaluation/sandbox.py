"""Running untrusted `custom_code` metrics in an isolated child process.

Layers, from the kernel up:
- a fresh scratch directory as the working directory, removed afterwards;
- `python -I` (no user site, no PYTHON* variables) with an environment holding no secrets;
- resource limits: address space, CPU seconds, file size, open files, no core dumps;
- a new network namespace when the process may create one (root, as in the server and CI here):
  the child then has no network at all; elsewhere only the next layer guards the network;
- an audit hook installed before the metric runs, which refuses opening files outside the scratch
  directory (Python's own library stays readable), listing other directories, sockets,
  subprocesses, fork, exec, signals and ctypes;
- a wall-clock timeout and an output cap enforced by the parent, which kills the whole process
  group.
The nested judge helper is served by the parent over the child's stdin/stdout, so the child never
holds a key. What is not enforced: a child running as root keeps root's file permissions should
the audit hook be bypassed; run the server as an unprivileged user in production.
"""

from __future__ import annotations

import asyncio
import ctypes
import json
import os
import resource
import shutil
import signal
import sys
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHILD = Path(__file__).with_name("sandbox_child.py")
CLONE_NEWNET = 0x40000000

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
    output_bytes: int = 1024 * 1024
    nested_calls: int = 20


@dataclass
class SandboxResult:
    result: Any = None
    explanation: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    output: str = ""
    nested_calls: int = 0


def _isolate(limits: Limits) -> Callable[[], None]:
    def preexec() -> None:  # runs in the child between fork and exec
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
        try:
            ctypes.CDLL(None, use_errno=True).unshare(CLONE_NEWNET)
        except OSError:
            pass

    return preexec


async def run_custom_code(
    code: str, data: dict[str, Any], *, nested_judge: NestedJudge | None = None, limits: Limits | None = None
) -> SandboxResult:
    """Run metric (or trigger) code with `data`; every failure comes back as `error`, never raised."""
    limits = limits or Limits()
    scratch = tempfile.mkdtemp(prefix="judgelab-sandbox-")
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": scratch, "TMPDIR": scratch}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-I", str(CHILD),
        cwd=scratch, env=env, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL, preexec_fn=_isolate(limits), limit=limits.output_bytes,
    )
    out = SandboxResult()
    answered = False
    try:
        answered = await asyncio.wait_for(_converse(proc, code, data, nested_judge, limits, out), limits.wall_seconds)
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
        shutil.rmtree(scratch, ignore_errors=True)
    return out


async def _converse(
    proc: asyncio.subprocess.Process, code: str, data: dict[str, Any], nested_judge: NestedJudge | None,
    limits: Limits, out: SandboxResult,
) -> bool:
    """Serve the child until it answers; True when it did (a result or its own error report)."""
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write((json.dumps({"code": code, "data": data}, default=str) + "\n").encode())
    await proc.stdin.drain()
    while True:
        line = await proc.stdout.readline()
        if not line:
            await proc.wait()
            out.error = _death(proc.returncode or 0, limits)
            return False
        try:
            msg = json.loads(line)
        except json.JSONDecodeError:
            out.error = "the sandbox protocol was broken (unreadable message)"
            return False
        kind = msg.get("type")
        if kind == "judge":
            reply = await _nested(msg, nested_judge, limits, out)
            proc.stdin.write((json.dumps(reply) + "\n").encode())
            await proc.stdin.drain()
        elif kind == "error":
            out.error, out.output = f"the metric code raised: {msg.get('error')}", msg.get("output", "")
            return True
        elif kind == "done":
            out.output = msg.get("output", "")
            _accept(msg, out)
            return True
        else:
            out.error = f"the sandbox protocol was broken (unknown message {kind!r})"
            return False


async def _nested(msg: dict[str, Any], nested_judge: NestedJudge | None, limits: Limits, out: SandboxResult) -> dict[str, Any]:
    if nested_judge is None:
        return {"error": "no judge is available to this metric"}
    if out.nested_calls >= limits.nested_calls:
        return {"error": f"at most {limits.nested_calls} nested judge calls per evaluation"}
    out.nested_calls += 1
    try:
        transcript, context = msg.get("transcript"), msg.get("context")
        return await nested_judge(str(msg.get("prompt", "")), str(msg.get("eval_type") or "binary_qualitative"),
                                  msg.get("enum_values"), None if transcript is None else str(transcript),
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
