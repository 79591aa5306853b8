"""Where custom code runs: the operating system's boundary around the child process.

A backend turns (limits, the child script) into a command line and tells what the child may read
and where its scratch directory is. The conversation with the child is the same for every backend
(`runner.py`). Two exist:

- `bwrap` (default on Linux): bubblewrap, the sandbox Flatpak uses. New user, PID, network, IPC,
  UTS, mount and cgroup namespaces; a fresh /proc and a minimal /dev; only the Python interpreter,
  its standard library (minus the C modules that reach outside: ctypes, sqlite3, sockets, ...) and
  the shared libraries they link bound read-only; a size-capped tmpfs as the scratch directory; the
  root read-only; no data directory, /etc, /var/run, host /tmp or unix socket; every capability
  dropped; uid/gid 65534 inside; no further user namespaces; a seccomp filter (`seccomp.py`); it
  dies with its parent and runs in a new session (no terminal to inject into).
- `process`: a plain `python -I` child with rlimits, its scratch directory on the host, and the
  audit hook as its only wall. For one trusted user on a laptop, never for a shared server.
"""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from judgelab.evaluation.sandbox import seccomp

CHILD = Path(__file__).with_name("child.py")
INSTALL_HINT = ("custom_code needs bubblewrap to run isolated: install it (`apt-get install bubblewrap`), or set "
                "JUDGELAB_SANDBOX=process on a single-user laptop where every metric's author is trusted")
SCRATCH = "/scratch"
# Standard-library C modules left out of the bwrap sandbox: they reach outside (files by path,
# sockets, processes, shared memory, raw memory) or exist only for tests.
WITHHELD = ("_ctypes", "_ctypes_test", "_sqlite3", "_socket", "_ssl", "_posixsubprocess", "_multiprocessing",
            "_posixshmem", "mmap", "fcntl", "termios", "resource", "_curses", "_curses_panel", "readline",
            "_testcapi", "_testinternalcapi", "_testbuffer", "_testimportmultiple", "_testmultiphase",
            "_testclinic", "_xxsubinterpreters", "_xxtestfuzz", "xxlimited", "xxlimited_35", "_dbm", "_gdbm",
            "_tkinter", "ossaudiodev", "_lsprof")


@dataclass
class Launch:
    argv: list[str]
    scratch: str  # the child's working directory, as the child sees it
    readable: list[str]  # what the child's audit hook lets it read besides its scratch
    host_scratch: str | None  # a host directory to remove afterwards (process backend)
    pass_fds: tuple[int, ...] = ()
    close_after: tuple[int, ...] = ()


class Backend(Protocol):
    name: str

    def problem(self) -> str | None:
        """Why this backend cannot run here (None when it can)."""

    def launch(self, scratch_bytes: int) -> Launch: ...


def _stdlib_dirs() -> list[str]:
    """The base interpreter's standard library: in a virtualenv, `platstdlib` would name the
    virtualenv's own lib directory (its site-packages), which the child must not see."""
    base = {"base": sys.base_prefix, "platbase": sys.base_exec_prefix, "installed_base": sys.base_prefix,
            "installed_platbase": sys.base_exec_prefix}
    paths = sysconfig.get_paths(vars=base)
    dirs = {os.path.realpath(paths["stdlib"]), os.path.realpath(paths["platstdlib"])}
    return sorted(dirs)


def _interpreter() -> str:
    """The base interpreter (not a virtualenv's link to it): the child needs no site-packages."""
    base = Path(sys.base_prefix) / "bin" / f"python{sys.version_info.major}.{sys.version_info.minor}"
    return os.path.realpath(base if base.exists() else sys.executable)


class ProcessBackend:
    name = "process"

    def problem(self) -> str | None:
        return None

    def launch(self, scratch_bytes: int) -> Launch:
        scratch = os.path.realpath(tempfile.mkdtemp(prefix="judgelab-sandbox-"))
        readable = sorted({os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix,
                                                          sys.base_exec_prefix)})
        return Launch([sys.executable, "-I", "-S", str(CHILD)], scratch, readable, scratch)


class BwrapBackend:
    name = "bwrap"

    def __init__(self, executable: str | None = None) -> None:
        self.executable = executable or shutil.which("bwrap") or "bwrap"

    @functools.cached_property
    def _problem(self) -> str | None:
        if sys.platform != "linux":
            return f"bubblewrap runs on Linux only; {INSTALL_HINT}"
        if shutil.which(self.executable) is None:
            return f"bubblewrap (bwrap) is not installed: {INSTALL_HINT}"
        probe = subprocess.run([self.executable, *self._namespaces(), "--ro-bind", "/", "/", "true"],
                               capture_output=True, text=True, timeout=10)
        if probe.returncode != 0:
            return (f"bubblewrap cannot create its namespaces here ({probe.stderr.strip()[:200]}); unprivileged "
                    f"user namespaces may be disabled (sysctl kernel.unprivileged_userns_clone=1): {INSTALL_HINT}")
        return None

    def problem(self) -> str | None:
        return self._problem

    @staticmethod
    def _namespaces() -> list[str]:
        return ["--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent", "--new-session",
                "--cap-drop", "ALL", "--uid", "65534", "--gid", "65534", "--hostname", "sandbox"]

    @functools.cached_property
    def _binds(self) -> list[str]:
        """Read-only binds of the interpreter, its standard library and the shared libraries they link.

        A bind mount costs about half a millisecond, and file-by-file this took ~90 of them. So once
        per process the allowed C modules and the system libraries are copied into a private
        directory (mode 0700 above them: no other user can swap a file in) and bound as a few
        directories instead."""
        python = _interpreter()
        stdlib = _stdlib_dirs()
        image = Path(tempfile.mkdtemp(prefix="judgelab-sandbox-runtime-"))
        atexit.register(shutil.rmtree, image, ignore_errors=True)
        elves = [python]
        args: list[str] = []
        for n, lib in enumerate(stdlib):
            args += ["--ro-bind", lib, lib]
            for hidden in ("site-packages", "dist-packages"):  # installed packages stay outside
                if (Path(lib) / hidden).is_dir():
                    args += ["--tmpfs", str(Path(lib) / hidden)]
            dynload = Path(lib) / "lib-dynload"
            if dynload.is_dir():
                copy = image / f"dynload-{n}"
                copy.mkdir(mode=0o755)
                for so in sorted(dynload.glob("*.so")):
                    if so.name.split(".")[0] not in WITHHELD:
                        shutil.copy2(so, copy / so.name)
                        elves.append(str(so))
                args += ["--ro-bind", str(copy), str(dynload)]
        linked: set[str] = set()
        for elf in elves:
            linked.update(_linked(elf))
        inside_runtime = [f for f in linked if any(f.startswith(p) for p in (sys.base_prefix, sys.prefix))]
        by_dir: dict[str, list[str]] = {}
        for f in sorted(linked - set(inside_runtime)):
            by_dir.setdefault(os.path.dirname(f), []).append(f)
        for n, (folder, found) in enumerate(sorted(by_dir.items())):
            copy = image / f"libs-{n}"
            copy.mkdir(mode=0o755)
            for f in found:
                shutil.copy2(os.path.realpath(f), copy / os.path.basename(f))
            args += ["--ro-bind", str(copy), folder]
        for f in sorted({python, *inside_runtime}):
            args += ["--ro-bind", os.path.realpath(f), f]
        image.chmod(0o711)  # bwrap (root outside) traverses it; nobody can list or write it
        return args

    def launch(self, scratch_bytes: int) -> Launch:
        argv = [self.executable, *self._namespaces(), "--clearenv", "--setenv", "LANG", "C.UTF-8",
                "--setenv", "HOME", SCRATCH, "--setenv", "TMPDIR", SCRATCH, "--setenv", "PATH", "/nonexistent",
                *self._binds, "--ro-bind", str(CHILD), "/judgelab/child.py",
                "--proc", "/proc", "--dev", "/dev",
                "--size", str(max(1 << 20, scratch_bytes)), "--tmpfs", SCRATCH, "--chdir", SCRATCH,
                "--remount-ro", "/"]
        filt = seccomp.program()
        pass_fds: tuple[int, ...] = ()
        if filt is not None:
            read, write = os.pipe()
            os.write(write, filt)  # a few hundred bytes: well inside the pipe's buffer
            os.close(write)
            argv += ["--seccomp", str(read)]
            pass_fds = (read,)
        argv += ["--", _interpreter(), "-I", "-S", "/judgelab/child.py"]
        return Launch(argv, SCRATCH, _stdlib_dirs(), None, pass_fds, pass_fds)


def _linked(elf: str) -> set[str]:
    """The shared libraries an ELF file loads (its dynamic loader included), by `ldd`."""
    try:
        out = subprocess.run(["ldd", elf], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return set()
    found = set()
    for line in out.splitlines():
        part = line.split("=>")[-1].strip().split(" (")[0].strip()
        if part.startswith("/") and os.path.exists(part):
            found.add(part)
    return found


@functools.cache
def backend(name: str) -> Backend:
    if name == "process":
        return ProcessBackend()
    if name == "bwrap":
        return BwrapBackend()
    raise ValueError(f"unknown sandbox backend {name!r}: choose bwrap or process")
