from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from judgelab.cli import app
from judgelab.config import get_settings
from judgelab.db import Database
from judgelab.projects.service import authenticate
from tests.conftest import AIRLINE, PG_URL

runner = CliRunner()


@pytest.fixture
def cli(db: Database, backend: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Point the CLI at the test database through the same variables a user sets."""
    if backend == "sqlite":
        url = db.engine.url.render_as_string(hide_password=False)
    else:
        schema, _ = request.getfixturevalue("_pg_schema")
        url = f"{PG_URL}?options=-csearch_path%3D{schema}"
    monkeypatch.setenv("JUDGELAB_DATABASE_URL", url)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def test_keys_create_prints_the_key_last(cli: None, db: Database) -> None:
    code, out = run("keys", "create", "--project", "demo", "--name", "ci")
    assert code == 0, out
    key = out.strip().splitlines()[-1]
    assert key.startswith("jl_") and " " not in key
    with db.session() as s:
        found = authenticate(s, key)
        assert found is not None and found.project.name == "demo"
    code, out = run("keys", "create", "--project", "demo")
    assert code == 0 and "Project 'demo'" in out
    code, out = run("keys", "create", "--project", "demo", "--name", "n" * 201)
    assert code == 2 and "limit is 200" in out


def test_import_airline_list_search_and_reimport(cli: None) -> None:
    assert AIRLINE.exists(), "the sample conversations ship in src/judgelab/demo/data"
    code, out = run("import", str(AIRLINE), "--project", "air", "--agent", "airline")
    assert code == 0, out
    assert "Imported 200 calls" in out and "200 new" in out
    code, out = run("calls", "list", "--json", "--page-size", "200")
    listed = json.loads(out)
    assert listed["count"] == 200 and len(listed["results"]) == 200
    code, out = run("calls", "list", "--json", "--search", "certificate", "--agent", "airline")
    assert 0 < json.loads(out)["count"] < 200
    code, out = run("calls", "list", "--search", "certificate")
    assert code == 0 and "calls in 'air'" in out
    code, out = run("import", str(AIRLINE), "--project", "air", "--agent", "airline")
    assert code == 0 and "200 updated" in out


def test_demo_loads_the_sample_calls_and_a_starter_metric_once(cli: None, db: Database) -> None:
    from judgelab.db.models import CallLog, Metric

    code, out = run("demo")
    assert code == 0, out
    assert "Loaded 200 airline conversations into project 'default' (200 new, 0 updated)" in out
    assert "starter metric 1 (created)" in out and "judgelab eval --metric 1 --project default" in out
    code, out = run("demo")
    assert code == 0 and "(0 new, 200 updated)" in out and "starter metric 1 (already there)" in out
    with db.session() as s:
        assert s.query(CallLog).count() == 200 and s.query(Metric).count() == 1
        tool_turns = [t for c in s.query(CallLog).limit(20) for t in c.transcript_json if t["role"] == "tool_call"]
        assert tool_turns, "tau-bench's tool calls arrive as tool_call turns"


def test_export_import_round_trip(cli: None, tmp_path: Path) -> None:
    src = tmp_path / "calls.txt"
    src.write_text("[00:01] Agent: Hello, how can I help?\n[00:04] User: My card was charged twice\n---\nAgent: Bye\n")
    assert run("import", str(src), "--project", "p1", "--agent", "bot")[0] == 0
    out1 = tmp_path / "one.jsonl"
    code, out = run("export", "--project", "p1", "-o", str(out1))
    assert code == 0 and "Wrote 2 calls" in out
    assert run("import", str(out1), "--project", "p2", "--agent", "unused")[0] == 0
    out2 = tmp_path / "two.jsonl"
    assert run("export", "--project", "p2", "--agent", "bot", "-o", str(out2))[0] == 0
    assert out1.read_text() == out2.read_text()
    assert json.loads(out1.read_text().splitlines()[0])["transcript_json"][1]["start_time"] == 4.0


def test_bad_import_writes_nothing(cli: None, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"call_id": "a", "transcript": "User: ok"}) + "\n{broken\n" + json.dumps({"duration": "x"}) + "\n")
    code, out = run("import", str(bad), "--project", "p", "--agent", "a")
    assert code == 2
    assert "line 2" in out and "line 3: duration" in out
    code, out = run("calls", "list", "--project", "p", "--json")
    assert code == 2 and "no project named 'p'" in out  # not even the project was created
    code, out = run("import", str(bad), "--project", "p", "--agent", "a", "--format", "xml")
    assert code == 2 and "format" in out


def test_metrics_commands(cli: None, tmp_path: Path) -> None:
    run("keys", "create", "--project", "m")
    code, out = run("metrics", "create", "--name", "kind", "--description", "Classify the caller", "--eval-type", "enum",
                    "--enum-value", "new", "--enum-value", "existing", "--json")
    assert code == 0, out
    metric = json.loads(out)
    assert metric["enum_values"] == ["new", "existing"]
    mid = str(metric["id"])
    code, out = run("metrics", "create", "--name", "bad", "--type", "basic", "--description", "x")
    assert code == 2 and "type 'basic' is not supported" in out
    prompt = tmp_path / "prompt.txt"
    prompt.write_text("Classify the caller.\nExisting = called before.")
    code, out = run("metrics", "edit", mid, "--description-file", str(prompt), "--note", "clearer")
    assert code == 0 and "version 1 -> 2" in out and "+Existing = called before." in out
    code, out = run("metrics", "edit", mid, "--name", "caller kind")
    assert code == 0 and "still version 2" in out
    code, out = run("metrics", "revert", mid, "--version", "1")
    assert code == 0 and "version 3" in out
    code, out = run("metrics", "versions", mid, "--json")
    history = json.loads(out)
    assert history["current_version"] == 3 and [v["change_note"] for v in history["results"]] == [
        "created", "clearer", "reverted to version 1"]
    code, out = run("metrics", "show", mid)
    assert code == 0 and "'caller kind'" in out and "version 3 of 3" in out
    code, out = run("metrics", "list")
    assert code == 0 and "caller kind" in out
    code, out = run("metrics", "show", "999")
    assert code == 2 and "no metric with id 999" in out
    # A second project (as the README's `keys create --project empty` makes): a metric id still names its own.
    run("keys", "create", "--project", "empty")
    code, out = run("metrics", "show", mid)
    assert code == 0 and "'caller kind'" in out, out
    code, out = run("metrics", "list")
    assert code == 2 and "several projects exist; pass --project" in out


def test_help_fits_80_columns_without_bool_noise() -> None:
    from typer.testing import CliRunner as Runner

    out = Runner().invoke(app, ["calls", "list", "--help"], env={"COLUMNS": "80"}, terminal_width=80)
    assert out.exit_code == 0 and "--json" in out.output
    assert "<bool>" not in out.output and all(len(line) <= 80 for line in out.output.splitlines())


def test_list_output_fits_80_columns_and_cuts_nothing(cli: None) -> None:
    assert run("demo")[0] == 0
    out = runner.invoke(app, ["calls", "list", "--page-size", "5"], terminal_width=80).output
    lines = out.splitlines()
    assert all(len(line) <= 80 for line in lines) and "…" not in out
    assert "first words" in out and "time (UTC)" in out
    out = runner.invoke(app, ["misaligned"], terminal_width=80).output
    assert "…" not in out and all(len(line) <= 80 for line in out.splitlines())
    text = " ".join(out.split())
    assert "confirms before changing a booking" in text and "diagnosis: not enough feedback" in text
