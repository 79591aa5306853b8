"""Runs inside the sandbox's child process (`python -I -S child.py`); never imported by judgelab.

Protocol on the child's stdin/stdout, one JSON object per line:
  parent -> child: {"code": str, "data": {...}, "policy": {"scratch": str, "readable": [str, ...]}}
  child -> parent: {"type": "judge", "prompt": str, "eval_type": str, "enum_values": [...], ...}
  parent -> child: {"result": ..., "explanation": str} or {"error": str}
  child -> parent: {"type": "done", "result": ..., "explanation": str, "extra": {...}, "output": str}
               or {"type": "error", "error": str, "output": str}

The audit hook installed here is the second wall (the operating system's sandbox is the first).
Its policy cannot be changed by the metric: the paths are literals compiled into the hook's code
(constants are immutable), every function it calls is bound as a default argument (so it looks up
no global or builtin name the metric could replace), and replacing a function's `__code__` or
defaults is itself an audited event the hook refuses. The hook is bound to no name: nothing the
metric can walk to (module globals, `judge.__globals__`, `__main__`) leads to it, and `gc`, which
could find it, cannot be imported.
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

HOOK_SOURCE = '''
def hook(event, args, _scratch=SCRATCH, _readable=READABLE, _blocked=BLOCKED_EVENTS, _modules=BLOCKED_MODULES,
         _fs=FS_EVENTS, _guarded=GUARDED_ATTRS, _isinstance=isinstance, _type=type, _str=str, _bytes=bytes,
         _int=int, _len=len, _deny=PermissionError, _stat=STAT, _write=WRITE_FLAGS, _oserror=OSError):
    def _norm(path, _scratch=_scratch, _type=_type, _str=_str, _bytes=_bytes):
        # Only exact str / bytes: a path-like object could answer differently when the OS asks.
        if _type(path) is _bytes:
            path = path.decode("utf-8", "surrogateescape")
        elif _type(path) is not _str:
            return None
        if not path.startswith("/"):
            path = _scratch + "/" + path
        parts = []
        for part in path.split("/"):
            if part == "..":
                if parts:
                    parts.pop()
            elif part and part != ".":
                parts.append(part)
        return "/" + "/".join(parts)

    def _inside(path, _scratch=_scratch):
        return path == _scratch or path.startswith(_scratch + "/")

    if event == "open":
        path, mode, flags = args
        if path is None or _type(path) is _int:
            return
        real = _norm(path)
        if real is None:
            raise _deny("sandbox: open a str path, not " + _type(path).__name__)
        m = _str(mode or "")
        writing = "w" in m or "a" in m or "x" in m or "+" in m or ((flags or 0) & _write) != 0
        if not (_inside(real) or (not writing and (real.startswith(_readable) or real in ("/dev/null", "/dev/urandom")))):
            raise _deny("sandbox: " + ("writing " if writing else "reading ") + real + " is not allowed")
        try:
            st = _stat(real)
        except _oserror:
            return
        if st.st_mode & 0o170000 == 0o040000:
            # A directory's fd would let `dir_fd=` resolve relative paths where this check cannot see.
            raise _deny("sandbox: opening a directory is not allowed")
        return
    if event in _fs:
        paths, dir_fds = _fs[event]
        for i in dir_fds:
            if i < _len(args) and args[i] not in (None, -1):
                raise _deny("sandbox: " + event + " with dir_fd is not allowed")
        for i in paths:
            if i < _len(args) and _type(args[i]) is not _int:
                real = _norm(args[i])
                if real is None or not _inside(real):
                    raise _deny("sandbox: " + event + " outside the scratch directory is not allowed")
        return
    if event == "import":
        if args and _str(args[0]).split(".")[0] in _modules:
            raise _deny("sandbox: importing " + _str(args[0]) + " is not allowed")
        return
    if event in ("object.__setattr__", "object.__delattr__"):
        if _len(args) > 1 and args[1] in _guarded:
            raise _deny("sandbox: changing " + _str(args[1]) + " is not allowed")
        return
    if event in _blocked:
        raise _deny("sandbox: " + event + " is not allowed")
'''

# Events that change the filesystem: (indexes of path arguments, indexes of dir_fd arguments).
FS_EVENTS = {
    "os.mkdir": ((0,), (2,)), "os.rmdir": ((0,), (1,)), "os.remove": ((0,), (1,)), "os.rename": ((0, 1), (2, 3)),
    "os.truncate": ((0,), ()), "os.chmod": ((0,), (2,)), "os.chown": ((0,), (3,)), "os.utime": ((0,), (3,)),
    "os.listdir": ((0,), ()), "os.scandir": ((0,), ()), "os.chflags": ((0,), ()), "shutil.rmtree": ((0,), (1,)),
}
BLOCKED_EVENTS = frozenset({
    "socket.__new__", "socket.connect", "socket.bind", "socket.sendto", "socket.sendmsg", "socket.getaddrinfo",
    "subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "os.forkpty", "pty.spawn",
    "os.kill", "os.killpg", "signal.pthread_kill", "os.chdir", "os.chroot", "os.link", "os.symlink", "os.setxattr",
    "os.removexattr", "os.getxattr", "os.listxattr", "os.setuid", "os.putenv", "os.unsetenv", "ctypes.dlopen",
    "ctypes.dlsym", "ctypes.call_function", "ctypes.cdata", "sys.setprofile", "sys.settrace", "sys.addaudithook",
    "webbrowser.open", "mmap.__new__", "os.startfile", "fcntl.ioctl",
})
BLOCKED_MODULES = frozenset({
    "ctypes", "_ctypes", "_posixsubprocess", "subprocess", "multiprocessing", "_multiprocessing", "_posixshmem",
    "resource", "_sqlite3", "sqlite3", "_socket", "socket", "_ssl", "ssl", "gc", "mmap", "fcntl", "termios",
    "pty", "_xxsubinterpreters", "_testcapi", "_testinternalcapi", "faulthandler", "signal",
})
GUARDED_ATTRS = frozenset({"__code__", "__defaults__", "__kwdefaults__", "__globals__", "__closure__", "__builtins__"})


def _install_hook(scratch: str, readable: list[str]) -> None:
    """Compile the hook with the policy as literals, give it no globals, install it, keep no name for it."""
    source = (HOOK_SOURCE.replace("SCRATCH", repr(scratch.rstrip("/") or "/"))
              .replace("READABLE", repr(tuple(p.rstrip("/") + "/" for p in readable)))
              .replace("BLOCKED_EVENTS", repr(BLOCKED_EVENTS)).replace("BLOCKED_MODULES", repr(BLOCKED_MODULES))
              .replace("FS_EVENTS", repr(FS_EVENTS)).replace("GUARDED_ATTRS", repr(GUARDED_ATTRS))
              .replace("WRITE_FLAGS", repr(os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC)))
    namespace = {"__builtins__": {"isinstance": isinstance, "type": type, "str": str, "bytes": bytes, "int": int,
                                  "len": len, "PermissionError": PermissionError, "STAT": os.stat, "OSError": OSError,
                                  "frozenset": frozenset}}
    exec(compile(source, "<sandbox policy>", "exec"), namespace)
    sys.modules.pop("gc", None)
    sys.addaudithook(namespace.pop("hook"))  # type: ignore[arg-type]
    namespace.clear()


def _send(obj: dict, _out=_proto_out, _dumps=json.dumps) -> None:
    _out.write(_dumps(obj, default=str) + "\n")
    _out.flush()


def judge(prompt, eval_type="binary_qualitative", enum_values=None, transcript=None, context=None,
          _send=_send, _in=_proto_in, _loads=json.loads):
    """Ask the metric's judge model a nested question; returns {"result": ..., "explanation": ...}.

    By default the judge sees the whole call; `transcript` (text) replaces it with an excerpt and
    `context` replaces the agent's description, so a metric can send only what matters.
    """
    _send({"type": "judge", "prompt": str(prompt), "eval_type": eval_type, "enum_values": enum_values,
           "transcript": None if transcript is None else str(transcript),
           "context": None if context is None else str(context)})
    answer = _loads(_in.readline() or "{}")
    if not isinstance(answer, dict) or "error" in answer:
        raise RuntimeError(f"nested judge call failed: {answer.get('error') if isinstance(answer, dict) else answer}")
    return answer


# The seed platform's Python-metric contract, so its metrics run unchanged: its helper names, its
# `utils` module (`from utils import extract_section, parse_llm_result, METRIC_SECTIONS`) and an
# API_KEY name. The key is a placeholder: the child never holds a key, the parent's judge does.
API_KEY = "judgelab-nested-judge"


def evaluate_llm_judge_metric(data, prompt, eval_type="binary_qualitative", enum_values=None, *_args, transcript=None,
                              context=None, **_options):
    """The platform's nested judge: `prompt` (its {{transcript}}-style variables filled from this call,
    inside the data block) on the call `data` describes."""
    return judge(prompt, eval_type, enum_values, transcript=transcript, context=context)


def evaluate_basic_metric(data, api_key=None, prompt="", eval_type="binary_qualitative", enum_values=None, **_options):
    """The platform's older helper name: the same nested judge."""
    return judge(prompt, eval_type, enum_values)


def parse_llm_result(res, prefix=""):
    """(result, explanation) from a helper's answer; an explanation starting VALID_SKIP: means N/A."""
    res = res if isinstance(res, dict) else {}
    explanation = str(res.get("explanation") or "")
    result = None if explanation.startswith("VALID_SKIP:") else res.get("result")
    return result, prefix + explanation


def extract_section(text, names):
    """The parts of a markdown-ish text under headings that name any of `names` (a heading is a line
    starting with #, or a short line ending in ':'), each with its heading; "" when none match."""
    wanted = [str(n).lower() for n in ([names] if isinstance(names, str) else list(names or []))]
    out, keep = [], False
    for line in str(text or "").splitlines():
        stripped = line.strip()
        if stripped.startswith("#") or (stripped.endswith(":") and 0 < len(stripped) <= 80):
            keep = any(w in stripped.lower() for w in wanted)
        if keep:
            out.append(line)
    return "\n".join(out).strip()


class _Sections(dict):
    """METRIC_SECTIONS: a name not set here reads as its own words ("booking_flow" -> "booking flow")."""

    def __missing__(self, key):
        return [str(key).replace("_", " ")]


def _utils_module():
    import types

    module = types.ModuleType("utils")
    module.extract_section = extract_section
    module.parse_llm_result = parse_llm_result
    module.evaluate_basic_metric = evaluate_basic_metric
    module.evaluate_llm_judge_metric = evaluate_llm_judge_metric
    module.METRIC_SECTIONS = _Sections()
    return module


def _main() -> None:
    request = json.loads(_proto_in.readline())
    code, data, policy = request["code"], request["data"], request["policy"]
    sys.modules["utils"] = _utils_module()
    env = {"data": data, "judge": judge, "__name__": "__metric__", "__builtins__": __builtins__,
           "evaluate_llm_judge_metric": evaluate_llm_judge_metric, "evaluate_basic_metric": evaluate_basic_metric,
           "parse_llm_result": parse_llm_result, "extract_section": extract_section, "API_KEY": API_KEY}
    try:
        compiled = compile(code, "<metric>", "exec")
        _install_hook(policy["scratch"], policy["readable"])  # from here on, files, processes and sockets are checked
    except BaseException as exc:  # noqa: BLE001 - a syntax error in the metric, or a broken set-up
        _send({"type": "error", "error": f"{type(exc).__name__}: {exc}"[:2000], "output": ""})
        return
    try:
        exec(compiled, env)
    except BaseException:  # noqa: BLE001 - anything the metric raises is reported, not crashed on
        lines = traceback.format_exc().splitlines()
        _send({"type": "error", "error": "\n".join(lines[-6:])[-2000:], "output": _captured.getvalue()[-10000:]})
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
