"""`judgelab review --audit N`: random calls labelled blind in the terminal, recorded as random_audit."""

from __future__ import annotations

from typing import Any

from typer.testing import CliRunner

from judgelab.cli import app
from judgelab.config import get_settings
from judgelab.testing.fake_openai import FakeOpenAIServer
from tests.conftest import Api, add_result
from tests.labs.test_labs_run import _cli_env


def test_review_audit_labels_random_calls_blind(api: Api, db: Any, backend: str, system_db: tuple[str, str],
                                                fake_model: FakeOpenAIServer, request: Any, monkeypatch: Any) -> None:
    agent = api.agent()
    metric = api.metric("confirms", description="Pass when the customer says yes.")["id"]
    for i in range(4):
        add_result(db, api.call(agent, f"c{i}", f"Book it? yes {i}")["id"], metric, True, "said yes")
    _cli_env(db, backend, system_db, fake_model, request, monkeypatch)
    monkeypatch.delenv("JUDGELAB_URL", raising=False)
    get_settings.cache_clear()
    try:  # the first answer agrees with the judge (pass), the second does not and gives a reason
        out = CliRunner().invoke(app, ["review", "--metric", str(metric), "--audit", "2"],
                                 input="pass\nfail\nat 00:01 the yes was about something else\n")
    finally:
        get_settings.cache_clear()
    assert out.exit_code == 0, out.output
    assert "drawn at random from 4" in out.output and "shown only after your answer" in out.output
    assert "the judge said PASS: agreed" in out.output and "the judge said PASS: disagreed" in out.output
    feedback = api.get(f"/test_framework/v1/metrics/{metric}/feedback/").json()["results"]
    assert sorted(f["vote"] for f in feedback) == ["agree", "disagree"]
    assert {f["source"] for f in feedback} == {"random_audit"} and len({f["audit_sample_id"] for f in feedback}) == 1
    assert "2 of 2 audit calls labelled" in out.output
