"""`validate`, `to-code` and `misaligned` with --url: the same commands through the API of a running server."""

from __future__ import annotations

from typing import Any

from typer.testing import CliRunner

from judgelab.cli import app
from judgelab.client import Client
from judgelab.testing.fake_openai import FakeOpenAIServer
from tests.client.conftest import Live, live_server  # noqa: F401
from tests.labs.test_labs_run import PARAPHRASE_RULE, STRICT, model


def test_labs_commands_against_a_server(live_server: Live, fake_model: FakeOpenAIServer,  # noqa: F811
                                        monkeypatch: Any, tmp_path: Any) -> None:
    fake_model.rule = model
    with Client(live_server.url, live_server.key) as jl:
        agent = jl.create_agent("bot")["id"]
        calls = {k: [jl.observe({"agent": agent, "call_id": f"{k}{i}", "transcript": text.format(i=i)})["id"] for i in range(4)]
                 for k, text in {"y": "Agent: Book ref-y{i}?\nUser: Customer: yes",
                                 "p": "Agent: Book ref-p{i}?\nUser: Sure, go ahead",
                                 "n": "Agent: I booked ref-n{i} for you"}.items()}
        metric = jl.create_metric({"name": "confirms", "description": STRICT, "eval_type": "binary_workflow_adherence"})["id"]
        everything = [c for group in calls.values() for c in group]
        assert jl.wait_job(jl.evaluate([metric], everything)["job_id"], timeout=60, interval=0.05)["status"] == "completed"
        for c in calls["p"]:
            jl.mark_metric_vote(c, metric, "disagree", expected_value=True, feedback="'go ahead' is a paraphrased yes")
        for c in calls["y"] + calls["n"]:
            jl.mark_metric_vote(c, metric, "agree", feedback="Right.")
    monkeypatch.setenv("JUDGELAB_API_KEY", live_server.key)
    monkeypatch.setenv("JUDGELAB_URL", live_server.url)
    proposal = tmp_path / "proposal.txt"
    proposal.write_text(STRICT + PARAPHRASE_RULE)
    runner = CliRunner()
    out = runner.invoke(app, ["validate", "--metric", str(metric), "--description-file", str(proposal), "--sample", "0"])
    assert out.exit_code == 0, out.output
    assert "12 calls checked (proposal): 4 fixed, 0 regressed" in out.output
    code = tmp_path / "metric.py"
    out = runner.invoke(app, ["to-code", "--metric", str(metric), "-o", str(code)])
    assert out.exit_code == 0, out.output
    assert "input tokens per call" in out.output and "_result" in code.read_text()
    out = runner.invoke(app, ["misaligned"])
    assert out.exit_code == 0 and "confirms" in out.output
    out = runner.invoke(app, ["validate", "--metric", "999999"])
    assert out.exit_code == 2 and "999999" in out.output


def test_review_against_a_server_starts_labs_there(live_server: Live, fake_model: FakeOpenAIServer,  # noqa: F811
                                                   monkeypatch: Any) -> None:
    fake_model.rule = model
    with Client(live_server.url, live_server.key) as jl:
        agent = jl.create_agent("bot")["id"]
        metric = jl.create_metric({"name": "confirms", "description": STRICT, "eval_type": "binary_workflow_adherence"})["id"]
        for k, text in {"y": "User: Customer: yes", "p": "User: Sure, go ahead", "n": "Agent: I booked it"}.items():
            for i in range(3):
                call = jl.observe({"agent": agent, "call_id": f"{k}{i}", "transcript": f"Agent: Book ref-{k}{i}?\n{text}"})["id"]
                jl.wait_job(jl.evaluate([metric], [call])["job_id"], timeout=60, interval=0.05)
                if k == "p":
                    jl.mark_metric_vote(call, metric, "disagree", expected_value=True, feedback="'go ahead' is a paraphrased yes")
                else:
                    jl.mark_metric_vote(call, metric, "agree", feedback="Right.")
    monkeypatch.setenv("JUDGELAB_API_KEY", live_server.key)
    out = CliRunner().invoke(app, ["review", "--metric", str(metric), "--url", live_server.url], input="y\n")
    assert out.exit_code == 0, out.output
    assert "0 likely-misaligned results to review; 9 feedback items (labs needs 6: ready)" in out.output
    assert "measured by repeated 3-fold cross-validation" in out.output and "verdict:" in out.output
