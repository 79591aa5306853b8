"""Escape attempts against the real boundary (bubblewrap), one family of the security audit per block.

Each attempt is metric code that tries to do something to the host: read a canary secret, change a
host file, signal a host process, reach a host socket, plant a file, or exhaust a resource. It
sets `_result = True` only where the forbidden act appeared to work. After every attempt the
host is checked directly: the canaries never appear in anything the sandbox returned, host files
keep their content, mode and times, no file appeared outside the scratch directory, the sentinel
processes live, and the listeners saw no connection. Any one of those failing is an escape.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import sysconfig
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from judgelab.evaluation.sandbox import BwrapBackend, Gate, Limits, Sandbox, SandboxResult, run_custom_code

LIMITS = Limits(wall_seconds=6, cpu_seconds=2, memory_bytes=256 * 1024 * 1024, scratch_bytes=8 * 1024 * 1024,
                output_bytes=256 * 1024, nested_calls=3)


def _bwrap() -> BwrapBackend:
    backend = BwrapBackend()
    problem = backend.problem()
    if problem:
        if os.environ.get("JUDGELAB_REQUIRE_BWRAP"):
            pytest.fail(problem)
        pytest.skip(problem)
    return backend


@dataclass
class Host:
    """What the attempts aim at, and how to tell whether any was hit."""

    root: Path
    secret: str
    secret_path: Path
    db_path: Path
    target: Path
    sentinel: subprocess.Popen[bytes]
    server: subprocess.Popen[bytes]
    tcp: socket.socket
    unix_path: Path
    unix: socket.socket
    udp: socket.socket
    abstract: socket.socket
    site: Path
    connections: list[str] = field(default_factory=list)

    def data(self) -> dict[str, Any]:
        return {"secret_path": str(self.secret_path), "db_path": str(self.db_path), "target": str(self.target),
                "dir": str(self.root), "pid": self.sentinel.pid, "server_pid": self.server.pid,
                "port": self.tcp.getsockname()[1], "udp_port": self.udp.getsockname()[1], "unix_path": str(self.unix_path),
                "site": str(self.site), "abstract": "judgelab-canary-" + self.secret[-8:]}

    def snapshot(self) -> dict[str, Any]:
        files = sorted(str(p) for p in self.root.rglob("*"))
        st = self.target.stat()
        return {"files": files, "target": (self.target.read_text(), st.st_mode, st.st_mtime_ns),
                "site": sorted(os.listdir(self.site)), "secret": self.secret_path.read_text()}


def _listen(kind: int, family: int, address: Any, sink: list[str], name: str) -> socket.socket:
    sock = socket.socket(family, kind)
    sock.bind(address)
    if kind == socket.SOCK_STREAM:
        sock.listen(8)

    def serve() -> None:
        while True:
            try:
                if kind == socket.SOCK_STREAM:
                    conn, _ = sock.accept()
                    sink.append(name)
                    conn.close()
                else:
                    sock.recvfrom(100)
                    sink.append(name)
            except OSError:
                return

    threading.Thread(target=serve, daemon=True).start()
    return sock


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Host]:
    root = tmp_path_factory.mktemp("host")
    secret = "canary-" + uuid.uuid4().hex
    secret_path = root / "secret.txt"
    secret_path.write_text(secret)
    db_path = root / "judgelab.db"
    with sqlite3.connect(db_path) as conn:
        conn.execute("CREATE TABLE api_keys (key_hash TEXT)")
        conn.execute("INSERT INTO api_keys VALUES (?)", (secret,))
    target = root / "target.txt"
    target.write_text("untouched")
    sentinel = subprocess.Popen(["sleep", "600"])
    server = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    sink: list[str] = []
    tcp = _listen(socket.SOCK_STREAM, socket.AF_INET, ("127.0.0.1", 0), sink, "tcp")
    udp = _listen(socket.SOCK_DGRAM, socket.AF_INET, ("127.0.0.1", 0), sink, "udp")
    unix_path = root / "api.sock"
    unix = _listen(socket.SOCK_STREAM, socket.AF_UNIX, str(unix_path), sink, "unix")
    abstract = _listen(socket.SOCK_STREAM, socket.AF_UNIX, "\0judgelab-canary-" + secret[-8:], sink, "abstract")
    site = Path(sysconfig.get_paths()["purelib"])
    os.environ["OPENAI_API_KEY"] = secret  # the server's own secret, as the audit found it
    h = Host(root, secret, secret_path, db_path, target, sentinel, server, tcp, unix_path, unix, udp, abstract, site, sink)
    try:
        yield h
    finally:
        os.environ.pop("OPENAI_API_KEY", None)
        for proc in (sentinel, server):
            proc.kill()
            proc.wait()
        for sock in (tcp, udp, unix, abstract):
            sock.close()


F = "import os\n"
ATTEMPTS: list[tuple[str, str, str]] = [
    # Policy tampering: reach the hook's policy or replace it, then act.
    ("tampering", "judge globals", F + "g = judge.__globals__\nfor k in list(g):\n    if k.startswith('_') and k not in ('__builtins__',):\n        g[k] = None\n"
     "_result = open(data['secret_path']).read()"),
    ("tampering", "import __main__", F + "import __main__, sys\nfor m in list(sys.modules.values()):\n    d = getattr(m, '__dict__', {})\n"
     "    for k in [k for k in d if 'BLOCK' in k or 'READABLE' in k or 'SCRATCH' in k]:\n        d[k] = frozenset()\n"
     "_result = open(data['secret_path']).read()"),
    ("tampering", "replace __code__", "def f(e, a):\n    pass\nf.__code__ = (lambda e, a: None).__code__\n_result = open(data['secret_path']).read()"),
    ("tampering", "patched realpath", F + "import posixpath\nposixpath.realpath = lambda p, **k: '/scratch/x'\nos.path.realpath = posixpath.realpath\n"
     "_result = open(data['secret_path']).read()"),
    ("tampering", "gc hunt for the hook", "import gc\nhooks = [o for o in gc.get_objects() if getattr(o, '__name__', '') == 'hook']\n"
     "hooks[0].__defaults__ = ()\n_result = open(data['secret_path']).read()"),
    ("tampering", "builtins swap", "import builtins\nbuiltins.isinstance = lambda *a: True\nbuiltins.PermissionError = ZeroDivisionError\n"
     "_result = open(data['secret_path']).read()"),
    ("tampering", "posix.open directly", "import sys\nposix = sys.modules['posix']\nfd = posix.open(data['secret_path'], 0)\n_result = posix.read(fd, 100).decode()"),
    ("tampering", "exec a fresh interpreter", F + "import sys\nos.execv(sys.executable, [sys.executable, '-c', f\"print(open({data['secret_path']!r}).read())\"])"),
    ("tampering", "extension loader for ctypes", "import importlib.machinery, importlib.util, glob, sys\n"
     "p = [x for d in sys.path for x in glob.glob(d + '/_ctypes*.so')][0]\n"
     "spec = importlib.util.spec_from_file_location('_ctypes', p)\nm = importlib.util.module_from_spec(spec)\n_result = True"),
    # Unaudited C modules: the server's database read directly.
    ("c modules", "import _sqlite3", "import _sqlite3\nc = _sqlite3.connect(data['db_path'])\n_result = c.execute('select * from api_keys').fetchall()"),
    ("c modules", "sqlite3 by loader", "import importlib.util, glob, sys\np = [x for d in sys.path for x in glob.glob(d + '/_sqlite3*.so')][0]\n"
     "spec = importlib.util.spec_from_file_location('_sqlite3', p)\nm = importlib.util.module_from_spec(spec)\nspec.loader.exec_module(m)\n"
     "_result = m.connect(data['db_path']).execute('select * from api_keys').fetchall()"),
    ("c modules", "db path from /proc fds", F + "found = []\nfor n in range(64):\n    try:\n        found.append(os.readlink(f'/proc/{os.getppid()}/fd/{n}'))\n"
     "    except OSError:\n        pass\n_result = [f for f in found if f.endswith('.db')]\nassert _result"),
    ("c modules", "parent environ", F + "_result = open(f'/proc/{os.getppid()}/environ').read()"),
    ("c modules", "pid 1 environ", "_result = open('/proc/1/environ').read()"),
    # dir_fd traversal.
    ("dir_fd", "open the secret's directory", F + "fd = os.open(data['dir'], os.O_RDONLY)\nf = os.open('secret.txt', os.O_RDONLY, dir_fd=fd)\n_result = os.read(f, 100).decode()"),
    ("dir_fd", "scratch fd and dot-dots", F + "fd = os.open('.', os.O_RDONLY)\nf = os.open('../../../../../../' + data['secret_path'], os.O_RDONLY, dir_fd=fd)\n"
     "_result = os.read(f, 100).decode()"),
    ("dir_fd", "O_PATH on root", F + "fd = os.open('/', os.O_PATH | os.O_DIRECTORY)\nf = os.open(data['secret_path'].lstrip('/'), os.O_RDONLY, dir_fd=fd)\n"
     "_result = os.read(f, 100).decode()"),
    ("dir_fd", "mkdir by dir_fd", F + "fd = os.open(data['dir'], os.O_RDONLY)\nos.mkdir('planted', dir_fd=fd)\n_result = True"),
    # Filesystem calls outside the scratch directory.
    ("filesystem", "link", F + "os.link(data['target'], data['dir'] + '/linked')\n_result = True"),
    ("filesystem", "rename", F + "os.rename(data['target'], data['target'] + '.moved')\n_result = True"),
    ("filesystem", "replace", F + "os.replace(data['target'], data['dir'] + '/replaced')\n_result = True"),
    ("filesystem", "remove", F + "os.remove(data['target'])\n_result = True"),
    ("filesystem", "truncate", F + "os.truncate(data['target'], 0)\n_result = True"),
    ("filesystem", "chmod", F + "os.chmod(data['target'], 0o777)\n_result = True"),
    ("filesystem", "utime", F + "os.utime(data['target'], (0, 0))\n_result = True"),
    ("filesystem", "mkdir", F + "os.mkdir(data['dir'] + '/made')\n_result = True"),
    ("filesystem", "symlink then read", F + "os.symlink(data['secret_path'], 'x')\n_result = open('x').read()"),
    ("filesystem", "mkfifo", F + "os.mkfifo(data['dir'] + '/fifo')\n_result = True"),
    ("filesystem", "mknod", F + "import stat\nos.mknod(data['dir'] + '/node', stat.S_IFREG | 0o600)\n_result = True"),
    ("filesystem", "stat oracle", F + "os.stat(data['secret_path'])\n_result = True"),
    # The parent's working directory: inside the sandbox that is the sandbox's own init, never a host path.
    ("filesystem", "readlink oracle", F + "r = os.readlink(f'/proc/{os.getppid()}/cwd')\n_result = r not in ('/scratch', '/')"),
    ("filesystem", "exists oracle", F + "_result = os.path.exists(data['secret_path'])"),
    ("filesystem", "copy the secret", "import shutil\nshutil.copy(data['secret_path'], 'copy.txt')\n_result = open('copy.txt').read()"),
    ("filesystem", "write into the host dir", "open(data['dir'] + '/planted.txt', 'w').write('x')\n_result = True"),
    ("filesystem", "plant a .pth", "open(data['site'] + '/judgelab_escape.pth', 'w').write('import os; os.system(\"id\")')\n_result = True"),
    ("filesystem", "symlink swap race", F + "import threading\nstop = []\ndef swap():\n    while not stop:\n        try:\n"
     "            os.symlink(data['secret_path'], 'race')\n            os.remove('race')\n        except OSError:\n            pass\n"
     "        open('race', 'w').write('ok')\nt = threading.Thread(target=swap)\nt.start()\nseen = ''\nfor _ in range(2000):\n"
     "    try:\n        seen = open('race').read()\n    except OSError:\n        pass\n    if 'canary' in seen:\n        break\n"
     "stop.append(1)\nt.join()\n_result = 'canary' in seen"),
    ("filesystem", "list the host", F + "_result = os.listdir(data['dir'])"),
    # Signals.
    ("signals", "kill the sentinel", F + "os.kill(data['pid'], 9)\n_result = True"),
    ("signals", "killpg the sentinel", F + "os.killpg(data['pid'], 9)\n_result = True"),
    ("signals", "pidfd around kill", F + "import signal\nfd = os.pidfd_open(data['pid'])\nsignal.pidfd_send_signal(fd, 9)\n_result = True"),
    ("signals", "pidfd on the server", F + "import sys\nsig = sys.modules['_signal']\nfd = os.pidfd_open(data['server_pid'])\n"
     "sig.pidfd_send_signal(fd, 9)\n_result = True"),
    ("signals", "signal module via sys.modules", "import sys\nsig = sys.modules['_signal']\nimport os\nos.kill(data['server_pid'], sig.SIGKILL)\n_result = True"),
    # The network and unix sockets.
    ("network", "tcp to loopback", "import socket\ns = socket.create_connection(('127.0.0.1', data['port']), timeout=2)\n_result = True"),
    ("network", "udp to loopback", "import socket\nsocket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'x', ('127.0.0.1', data['udp_port']))\n_result = True"),
    ("network", "unix socket file", "import socket\ns = socket.socket(socket.AF_UNIX)\ns.connect(data['unix_path'])\n_result = True"),
    ("network", "abstract unix socket", "import socket\ns = socket.socket(socket.AF_UNIX)\ns.connect('\\0' + data['abstract'])\n_result = True"),
    ("network", "postgresql socket", "import socket\ns = socket.socket(socket.AF_UNIX)\ns.connect('/var/run/postgresql/.s.PGSQL.5432')\n_result = True"),
    ("network", "_socket by loader", "import importlib.util, glob, sys\np = [x for d in sys.path for x in glob.glob(d + '/_socket*.so')][0]\n"
     "spec = importlib.util.spec_from_file_location('_socket', p)\nm = importlib.util.module_from_spec(spec)\nspec.loader.exec_module(m)\n"
     "s = m.socket(m.AF_INET, m.SOCK_STREAM)\ns.connect(('127.0.0.1', data['port']))\n_result = True"),
    # Secrets in the environment and on disk.
    ("secrets", "environment", F + "_result = dict(os.environ)"),
    ("secrets", "/etc/shadow", "_result = open('/etc/shadow').read()"),
    ("secrets", "the data directory", "_result = open(data['db_path'], 'rb').read().decode('latin-1')"),
    ("secrets", "home directory", F + "_result = os.listdir(os.path.expanduser('~root'))"),
    # Processes that outlive the sandbox, and resources.
    ("processes", "fork", F + "pid = os.fork()\nif pid == 0:\n    import time\n    time.sleep(600)\n_result = True"),
    ("processes", "posix_spawn", F + "import sys\nos.posix_spawn(sys.executable, [sys.executable, '-c', 'import time; time.sleep(600)'], {})\n_result = True"),
    ("processes", "subprocess", "import subprocess\nsubprocess.Popen(['sleep', '600'])\n_result = True"),
    ("resources", "allocate 2 GB", "x = bytearray(2 * 1024**3)\n_result = True"),
    ("resources", "fill the scratch disk", "n = 0\nwith open('big', 'wb') as f:\n    for _ in range(1024):\n        f.write(b'x' * 1024 * 1024)\n"
     "        n += 1\n_result = n >= 1024"),
    ("resources", "loop forever", "while True:\n    pass"),
    ("resources", "sleep past the wall clock", "import time\ntime.sleep(60)\n_result = True"),
    ("resources", "flood the output", "while True:\n    print('x' * 10000)"),
    ("resources", "thousands of threads", "import threading, time\nts = [threading.Thread(target=time.sleep, args=(30,)) for _ in range(5000)]\n"
     "[t.start() for t in ts]\n_result = True"),
]


def _leaked(host: Host, out: SandboxResult) -> bool:
    blob = repr((out.result, out.explanation, out.extra, out.output, out.error))
    return host.secret in blob or host.secret[-8:] in (out.output or "")


@pytest.mark.parametrize(("family", "name", "code"), ATTEMPTS, ids=[f"{f}: {n}" for f, n, _ in ATTEMPTS])
def test_escape_attempt_is_blocked(host: Host, family: str, name: str, code: str) -> None:
    box = Sandbox(_bwrap(), LIMITS, Gate(4))
    before = host.snapshot()
    seen = len(host.connections)
    out = asyncio.run(run_custom_code(code + "\n_explanation = 'escaped'" if "_result" in code else code, host.data(),
                                      limits=LIMITS, sandbox=box))
    assert out.result is not True and not out.result, (name, out)
    assert not _leaked(host, out), (name, out)
    assert host.snapshot() == before, name  # no host file changed, appeared or vanished
    assert host.sentinel.poll() is None and host.server.poll() is None, name
    assert len(host.connections) == seen, (name, host.connections)


def test_enough_attempts_in_every_family() -> None:
    families: dict[str, int] = {}
    for family, _name, _code in ATTEMPTS:
        families[family] = families.get(family, 0) + 1
    assert len(ATTEMPTS) >= 50 and all(n >= 2 for n in families.values()), families


def test_legitimate_code_still_runs_in_bwrap(host: Host) -> None:
    box = Sandbox(_bwrap(), LIMITS, Gate(4))
    code = ("import json, re, math, datetime, collections, statistics, random, threading\n"
            "open('notes.txt', 'w').write(json.dumps({'n': 3}))\n"
            "t = threading.Thread(target=lambda: None); t.start(); t.join()\n"
            "_result = json.loads(open('notes.txt').read())['n'] + len(re.findall('o', 'foo'))\n"
            "_explanation = str(os.getuid()) if False else 'ok'\nimport os\n_extra = {'uid': os.getuid(), 'cwd': os.getcwd()}")
    out = asyncio.run(run_custom_code(code, {}, limits=LIMITS, sandbox=box))
    assert out.error is None, out.error
    assert out.result == 5 and out.extra == {"uid": 65534, "cwd": "/scratch"}


def test_the_cap_queues_sandboxes_and_never_fails_them() -> None:
    box = Sandbox(_bwrap(), LIMITS, Gate(3))

    async def many() -> list[SandboxResult]:
        return await asyncio.gather(*(run_custom_code("import time\ntime.sleep(0.2)\n_result = True\n_explanation = ''", {},
                                                      sandbox=box) for _ in range(10)))

    outs = asyncio.run(many())
    assert [o.error for o in outs] == [None] * 10 and all(o.result is True for o in outs)
    assert box.gate.peak == 3 and box.gate.in_use == 0


def test_without_bubblewrap_custom_code_is_refused_by_name() -> None:
    missing = BwrapBackend(executable="/nonexistent/bwrap")
    assert "apt-get install bubblewrap" in (missing.problem() or "")
    out = asyncio.run(run_custom_code("_result = True\n_explanation = ''", {}, sandbox=Sandbox(missing, LIMITS, Gate(1))))
    assert out.result is None and out.error is not None and "apt-get install bubblewrap" in out.error


def test_the_child_sees_only_the_runtime(host: Host) -> None:
    box = Sandbox(_bwrap(), LIMITS, Gate(1))
    # The hook forbids listing; what the OS shows is checked by asking for paths that exist on the host.
    code = ("import os\nhost = [p for p in ('/etc/passwd', '/var/run', '/tmp', '/home', '/usr/bin/sh', '/bin/sh', data['site'], "
            "os.path.dirname(data['dir'])) if os.path.exists(p)]\n_result = len(host) == 0\n_explanation = repr(host)")
    out = asyncio.run(run_custom_code(code, host.data(), limits=LIMITS, sandbox=box))
    assert out.error is None and out.result is True, out
    assert shutil.which("bwrap") is not None
