"""custom_code runs isolated: each escape attempt below must come back as an explicit error."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import pytest

from judgelab.evaluation.sandbox import Limits, SandboxResult, run_custom_code

DATA = {"transcript": "Agent: hello\nUser: I want a refund", "metadata": {"queue": "billing"}, "politeness": 4}
FAST = Limits(wall_seconds=5, cpu_seconds=2, memory_bytes=256 * 1024 * 1024)


def run(code: str, limits: Limits = FAST, nested: Any = None) -> SandboxResult:
    return asyncio.run(run_custom_code(code, DATA, nested_judge=nested, limits=limits))


def test_a_metric_reads_data_and_sets_its_result() -> None:
    out = run(
        "print('debug line')\n"
        "_result = 'refund' in data['transcript'] and data['politeness'] > 3\n"
        "_explanation = 'refund mentioned'\n"
        "_extra = {'queue': data['metadata']['queue']}\n"
        "open('scratch.txt', 'w').write('allowed here')\n"
    )
    assert out.error is None, out.error
    assert (out.result, out.explanation, out.extra) == (True, "refund mentioned", {"queue": "billing"})
    assert "debug line" in out.output


def test_nested_judge_is_served_by_the_parent() -> None:
    prompts: list[str] = []

    async def judge(prompt: str, eval_type: str, enum_values: list[str] | None, transcript: str | None,
                    context: str | None) -> dict[str, Any]:
        prompts.append(prompt)
        return {"result": True, "explanation": f"judged {eval_type}"}

    out = run("r = judge('Is the caller polite? ' + data['transcript'][-6:])\n_result = r['result']\n_explanation = r['explanation']",
              nested=judge)
    assert out.error is None and out.result is True and out.explanation == "judged binary_qualitative"
    assert prompts == ["Is the caller polite? refund"] and out.nested_calls == 1
    out = run("judge('x')\n_result = 1\n_explanation = ''")
    assert out.error and "no judge is available" in out.error


@pytest.mark.parametrize(
    ("name", "code", "words"),
    [
        ("read a file outside the scratch dir", "_result = open('/etc/passwd').read()", "not allowed"),
        ("read the database", f"_result = open({os.path.abspath('pyproject.toml')!r}).read()", "not allowed"),
        ("list the filesystem", "import os\n_result = os.listdir('/')", "not allowed"),
        ("write outside", "open('/tmp/judgelab-escape', 'w').write('x')", "not allowed"),
        ("open a socket", "import socket\nsocket.create_connection(('127.0.0.1', 5432))", "not allowed"),
        ("run a process", "import subprocess\nsubprocess.run(['id'])", "not allowed"),
        ("os.system", "import os\nos.system('id')", "not allowed"),
        ("fork bomb", "import os\nwhile True:\n    os.fork()", "not allowed"),
        ("ctypes", "import ctypes\nctypes.CDLL(None).system(b'id')", "not allowed"),
        ("allocate 10 GB", "x = bytearray(10 * 1024**3)", "MemoryError"),
        ("loop forever", "while True:\n    pass", "CPU"),
    ],
)
def test_escape_attempts_are_blocked(name: str, code: str, words: str) -> None:
    out = run(code + "\n_result = True\n_explanation = 'escaped'")
    assert out.error is not None, name
    assert words in out.error, (name, out.error)
    assert out.result is None
    assert not os.path.exists("/tmp/judgelab-escape")


def test_no_secrets_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret-value")
    out = run("import os\n_result = 'sk-secret-value' in str(dict(os.environ))\n_explanation = str(sorted(os.environ))")
    assert out.error is None and out.result is False
    assert "OPENAI_API_KEY" not in out.explanation


def test_wall_clock_timeout_kills_sleepers() -> None:
    out = run("import time\ntime.sleep(30)", Limits(wall_seconds=1, cpu_seconds=5))
    assert out.error and "wall time" in out.error


def test_bad_outputs_are_errors() -> None:
    assert "did not set _result" in (run("_explanation = 'x'").error or "")
    assert "_result must be" in (run("_result = [1]\n_explanation = 'x'").error or "")
    assert "_explanation" in (run("_result = True").error or "")
    assert "raised" in (run("1/0").error or "")
    assert "ZeroDivisionError" in (run("1/0").error or "")
