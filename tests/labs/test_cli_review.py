"""`judgelab review` in the terminal: one result at a time, votes, the counter, labs to the verdict."""

from __future__ import annotations

from typing import Any

from typer.testing import CliRunner

from judgelab.cli import app
from judgelab.config import get_settings
from judgelab.testing.fake_openai import FakeOpenAIServer
from tests.conftest import Api, add_result
from tests.labs.test_labs_run import _cli_env, _setup, _vote, model


def test_review_votes_and_runs_labs(api: Api, db: Any, backend: str, system_db: tuple[str, str],
                                    fake_model: FakeOpenAIServer, request: Any, monkeypatch: Any) -> None:
    fake_model.rule = model
    metric, calls = _setup(api)
    # Hedged verdicts on the paraphrases put them first in the queue; the others are settled.
    for c in calls["paraphrase"]:
        add_result(db, c, metric, False, "It seems the customer said go ahead, which may be a yes.")
    for c in calls["yes"]:
        add_result(db, c, metric, True, "The customer said yes.")
        _vote(api, c, metric, vote="agree", feedback="Right.", reviewer="colleague")
    for c in calls["none"]:
        add_result(db, c, metric, False, "No confirmation was asked for.")
        _vote(api, c, metric, vote="agree", feedback="Right.", reviewer="colleague")
    _cli_env(db, backend, system_db, fake_model, request, monkeypatch)
    monkeypatch.delenv("JUDGELAB_URL", raising=False)
    # Skip the first, quit after none: then disagree with five, agree with none, and start labs.
    answers = "s\n" + "d\nAt 00:04 the customer said 'go ahead', a paraphrased yes.\npass\n" * 5 + "y\n"
    get_settings.cache_clear()
    try:
        out = CliRunner().invoke(app, ["review", "--metric", str(metric), "--reviewer", "maria"], input=answers)
    finally:
        get_settings.cache_clear()
    assert out.exit_code == 0, out.output
    assert "6 likely-misaligned results to review; 12 feedback items (labs needs 6: ready)" in out.output
    assert "was scored FAIL" in out.output and "The explanation says: It seems the customer said go ahead" in out.output
    assert "go ahead" in out.output.split("The transcript shows:", 1)[1]
    assert "saved: 17 feedback items (labs needs 6: ready)" in out.output
    assert "verdict:" in out.output and "Nothing was applied" in out.output
    assert "+Rules learned from reviewers' feedback" in out.output
    assert "+- A paraphrased confirmation such as 'go ahead' counts as a yes." in out.output
    assert "held out (n=6, base rate" in out.output
    votes = api.get(f"/test_framework/v1/metrics/{metric}/feedback/", params={"page_size": 200}).json()["results"]
    mine = [v for v in votes if v["reviewer"] == "maria"]
    assert len(mine) == 5 and all(v["label"] is True and v["vote"] == "disagree" for v in mine)


def test_review_against_a_server_reports_api_errors(monkeypatch: Any) -> None:
    monkeypatch.setenv("JUDGELAB_URL", "http://127.0.0.1:9")  # nothing listens on the discard port
    monkeypatch.setenv("JUDGELAB_API_KEY", "jl_x")
    out = CliRunner().invoke(app, ["review", "--metric", "1"])
    assert out.exit_code == 2 and "cannot reach the server" in out.output
