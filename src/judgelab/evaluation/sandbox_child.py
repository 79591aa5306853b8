"""Runs inside the sandbox's child process (started as `python -I sandbox_child.py`); never imported by judgelab.

Protocol on the child's stdin/stdout, one JSON object per line:
  parent -> child: {"code": str, "data": {...}}               (first line)
  child -> parent: {"type": "judge", "prompt": str, "eval_type": str, "enum_values": [...]}
  parent -> child: {"result": ..., "explanation": str} or {"error": str}
  child -> parent: {"type": "done", "result": ..., "explanation": str, "extra": {...}, "output": str}
               or {"type": "error", "error": str, "output": str}
"""

import io
import json
import os
import sys
import traceback

_proto_in = sys.stdin
_proto_out = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
_captured = io.StringIO()
sys.stdout = sys.stderr = _captured
_SCRATCH = os.path.realpath(os.getcwd())
_READABLE = tuple(
    {os.path.realpath(p) + os.sep for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix)}
) + ("/dev/null", "/dev/urandom")
_BLOCKED_EVENTS = {
    "socket.__new__", "socket.connect", "socket.bind", "socket.sendto", "socket.getaddrinfo",
    "subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "os.forkpty",
    "os.kill", "os.killpg", "ctypes.dlopen", "ctypes.dlsym", "ctypes.call_function", "os.chroot",
    "os.setuid", "os.putenv", "sys.setprofile", "sys.settrace", "pty.spawn", "webbrowser.open",
}
_BLOCKED_MODULES = {"ctypes", "_ctypes", "_posixsubprocess", "multiprocessing", "_multiprocessing", "resource"}
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


def _inside(path: str) -> bool:
    return path == _SCRATCH or path.startswith(_SCRATCH + os.sep)


def _audit(event: str, args: tuple) -> None:
    if event == "open":
        path, mode, flags = args
        if path is None or isinstance(path, int):
            return
        real = os.path.realpath(os.fsdecode(path))
        writing = bool(mode and any(c in str(mode) for c in "wax+")) or bool((flags or 0) & _WRITE_FLAGS)
        if _inside(real) or (not writing and real.startswith(_READABLE)):
            return
        raise PermissionError(f"sandbox: {'writing' if writing else 'reading'} {real} is not allowed")
    if event in ("os.listdir", "os.scandir"):
        path = args[0] if args else "."
        if path is not None and not isinstance(path, int) and not _inside(os.path.realpath(os.fsdecode(path))):
            raise PermissionError("sandbox: listing directories outside the scratch directory is not allowed")
    elif event == "import":
        if args and str(args[0]).split(".")[0] in _BLOCKED_MODULES:
            raise PermissionError(f"sandbox: importing {args[0]} is not allowed")
    elif event in _BLOCKED_EVENTS:
        raise PermissionError(f"sandbox: {event} is not allowed")


def _send(obj: dict) -> None:
    _proto_out.write(json.dumps(obj, default=str) + "\n")
    _proto_out.flush()


def judge(prompt, eval_type="binary_qualitative", enum_values=None, transcript=None, context=None):
    """Ask the metric's judge model a nested question; returns {"result": ..., "explanation": ...}.

    By default the judge sees the whole call; `transcript` (text) replaces it with an excerpt and
    `context` replaces the agent's description, so a metric can send only what matters.
    """
    _send({"type": "judge", "prompt": str(prompt), "eval_type": eval_type, "enum_values": enum_values,
           "transcript": None if transcript is None else str(transcript),
           "context": None if context is None else str(context)})
    answer = json.loads(_proto_in.readline() or "{}")
    if "error" in answer:
        raise RuntimeError(f"nested judge call failed: {answer['error']}")
    return answer


def _main() -> None:
    request = json.loads(_proto_in.readline())
    code, data = request["code"], request["data"]
    env = {"data": data, "judge": judge, "__name__": "__metric__", "__builtins__": __builtins__}
    compiled = compile(code, "<metric>", "exec")
    sys.addaudithook(_audit)  # from here on, every file, process and socket access is checked
    try:
        exec(compiled, env)
    except BaseException:  # noqa: BLE001 - anything the metric raises is reported, not crashed on
        lines = traceback.format_exc().splitlines()
        _send({"type": "error", "error": "\n".join(lines[-6:]), "output": _captured.getvalue()[-10000:]})
        return
    _send({
        "type": "done",
        "result": env.get("_result"),
        "explanation": env.get("_explanation"),
        "extra": env.get("_extra"),
        "has_result": "_result" in env,
        "output": _captured.getvalue()[-10000:],
    })


_main()
