"""The custom_code sandbox: run untrusted metric code isolated by the operating system.

`run_custom_code` is the one entry point; `configure` picks the backend (`JUDGELAB_SANDBOX`,
bwrap by default) and the limits; `status` says in one line what protects this process.
"""

from __future__ import annotations

from judgelab.evaluation.sandbox.backends import INSTALL_HINT, Backend, BwrapBackend, ProcessBackend
from judgelab.evaluation.sandbox.runner import (
    Gate,
    Limits,
    NestedJudge,
    Sandbox,
    SandboxResult,
    configure,
    current,
    run_custom_code,
)


def status() -> str:
    """What runs custom code in this process, for `serve` to print at start-up."""
    box = current()
    problem = box.backend.problem()
    if problem is not None:
        return f"custom_code metrics are refused: {problem}"
    if box.backend.name == "process":
        return ("custom_code runs in the `process` sandbox (JUDGELAB_SANDBOX=process): an audit hook is its only "
                "wall, for one trusted user on a laptop, never for a shared server")
    return (f"custom_code runs in bubblewrap (at most {box.gate.size} at once, {box.limits.memory_bytes >> 20} MB and "
            f"{box.limits.cpu_seconds} CPU-s each, {box.limits.nested_calls} nested judge calls per evaluation)")


__all__ = ["INSTALL_HINT", "Backend", "BwrapBackend", "Gate", "Limits", "NestedJudge", "ProcessBackend", "Sandbox",
           "SandboxResult", "configure", "current", "run_custom_code", "status"]
