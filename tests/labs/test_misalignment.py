"""Finding misaligned metrics and the results to review first, over the API."""

from __future__ import annotations

from judgelab.db import Database
from tests.conftest import Api, add_result


def _vote(api: Api, call: int, metric: int, vote: str, reason: str, expected: object = None) -> None:
    body = {"metric_id": metric, "vote": vote, "feedback": reason}
    if expected is not None:
        body["expected_value"] = expected
    r = api.post(f"/observability/v1/call-logs-external/{call}/mark_metric_vote/", json=body)
    assert r.status_code in (200, 201), r.text


def test_systemic_edge_cases_and_too_little_feedback(api: Api, db: Database) -> None:
    agent = api.agent()
    calls = [api.call(agent, f"c{i}", f"I'd like to book flight {i}. Go ahead and book it.")["id"] for i in range(8)]
    strict = api.metric("confirms booking", description="Pass when the customer explicitly says yes before booking.")
    scattered = api.metric("polite", description="Is the agent polite?")
    young = api.metric("greets", description="Does the agent greet the caller?")
    for c in calls:
        add_result(db, c, strict["id"], False, "The customer never said the word yes.")
        add_result(db, c, scattered["id"], True, "Polite throughout.")
        add_result(db, c, young["id"], True, "Said hello.")
    for i, c in enumerate(calls[:6]):
        _vote(api, c, strict["id"], "disagree",
              f"At 00:0{i} the customer said 'go ahead', a paraphrased confirmation; it counts as a yes.", True)
    for c in calls[6:]:
        _vote(api, c, strict["id"], "agree", "right")
    reasons = ["Interrupted the caller twice at 01:10.", "Sarcastic tone when asked about fees.",
               "Fine.", "Fine.", "Fine.", "Fine."]
    for c, reason in zip(calls[:6], reasons):
        _vote(api, c, scattered["id"], "disagree" if reason != "Fine." else "agree", reason)
    _vote(api, calls[0], young["id"], "disagree", "No greeting at all.")

    r = api.get("/api/v1/metrics/misalignment/")
    assert r.status_code == 200, r.text
    reports = r.json()["results"]
    # Worst first by the lower bound of the disagreement interval: 6 of 8, then 1 of 1, then 2 of 6.
    assert [m["name"] for m in reports] == ["confirms booking", "greets", "polite"]
    first = reports[0]
    assert first["feedback"] == 8 and first["false_fails"] == 6 and first["false_passes"] == 0
    assert first["disagreement"]["value"] == 0.75 and first["disagreement"]["n"] == 8
    assert 0.4 < first["disagreement"]["low"] < 0.75 < first["disagreement"]["high"]
    diagnosis = first["diagnosis"]
    assert diagnosis["kind"] == "systemic" and diagnosis["direction"] == "false fails"
    assert "paraphrased confirmation" in diagnosis["cause"] and diagnosis["share"] == 1.0
    assert "do not flag" in diagnosis["suggested_edit"]
    agreement = first["agreement"]
    assert agreement["n"] == 8 and agreement["base_rate"]["value"] == 0.75 and agreement["accuracy"]["value"] == 0.25
    by_name = {m["name"]: m for m in reports}
    assert by_name["polite"]["diagnosis"]["kind"] == "edge_cases"
    assert by_name["greets"]["diagnosis"]["kind"] == "not_enough_feedback"

    # A new version has no votes yet: its agreement is unknown, never the old version's.
    api.patch(f"/test_framework/v1/metrics/{strict['id']}/", json={"description": "Paraphrased yes counts."})
    again = {m["name"]: m for m in api.get("/api/v1/metrics/misalignment/").json()["results"]}["confirms booking"]
    assert again["version"] == 2 and again["agreement"] is None
    assert [v["version"] for v in again["by_version"]] == [1] and again["by_version"][0]["compared"] == 8


def test_review_queue_surfaces_contradictions_hedges_and_flips(api: Api, db: Database) -> None:
    agent = api.agent()
    contradiction = api.call(agent, "a", "Book it.")["id"]
    hedge = api.call(agent, "b", "Maybe book it?")["id"]
    twin_1 = api.call(agent, "c", "Same words here.")["id"]
    twin_2 = api.call(agent, "d", "same   words here.")["id"]
    fine = api.call(agent, "e", "Please book.")["id"]
    reviewed = api.call(agent, "f", "Book now.")["id"]
    metric = api.metric("confirms")
    add_result(db, contradiction, metric["id"], True, "The agent did not confirm before booking.")
    add_result(db, hedge, metric["id"], True, "It is unclear whether the customer agreed.")
    add_result(db, twin_1, metric["id"], True, "Confirmed.")
    add_result(db, twin_2, metric["id"], False, "Not confirmed.")
    add_result(db, fine, metric["id"], True, "Confirmed.")
    add_result(db, reviewed, metric["id"], True, "The agent never asked.")
    _vote(api, reviewed, metric["id"], "disagree", "Never asked at 00:03.", False)
    r = api.get(f"/api/v1/metrics/{metric['id']}/review_queue/")
    assert r.status_code == 200, r.text
    queue = {item["call_log_id"]: item["signals"] for item in r.json()["results"]}
    assert set(queue) == {contradiction, hedge, twin_1, twin_2}
    assert "failure" in queue[contradiction][0] and "hedged" in queue[hedge][0]
    assert "different verdict" in queue[twin_1][0]
    assert api.get("/api/v1/metrics/999/review_queue/").status_code == 404


def test_the_cli_table(api: Api, db: Database, backend: str, request, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from typer.testing import CliRunner

    from judgelab.cli import app
    from judgelab.config import get_settings
    from tests.conftest import PG_URL

    agent = api.agent()
    metric = api.metric("confirms booking")
    for i in range(6):
        call = api.call(agent, f"x{i}", f"go ahead {i}")["id"]
        add_result(db, call, metric["id"], False, "no yes")
        _vote(api, call, metric["id"], "disagree", "a paraphrased confirmation counts as yes", True)
    if backend == "sqlite":
        url = db.engine.url.render_as_string(hide_password=False)
    else:
        schema, _ = request.getfixturevalue("_pg_schema")
        url = f"{PG_URL}?options=-csearch_path%3D{schema}"
    monkeypatch.setenv("JUDGELAB_DATABASE_URL", url)
    get_settings.cache_clear()
    try:
        out = CliRunner().invoke(app, ["misaligned"])
        as_json = CliRunner().invoke(app, ["misaligned", "--json"])
    finally:
        get_settings.cache_clear()
    assert out.exit_code == 0, out.output
    text = " ".join(out.output.split())  # wrapped at the terminal's width (80 here), never cut
    assert '6 of 6 labelled calls are false fails, and 100 % of their reasons mention "paraphrased confirmation"' in text
    import json

    report = json.loads(as_json.output)[0]
    assert report["diagnosis"]["cause"] == "paraphrased confirmation"
    assert report["disagreement"]["n"] == 6 and round(report["disagreement"]["low"], 2) == 0.61


def test_corrected_pass_rate(api: Api, db: Database) -> None:
    agent = api.agent()
    metric = api.metric("confirms booking")
    calls = [api.call(agent, f"p{i}", f"call number {i}")["id"] for i in range(40)]
    # The judge passes 24 of 40 (60 %).
    for i, c in enumerate(calls):
        add_result(db, c, metric["id"], i < 24, "judged")
    raw_only = api.get(f"/api/v1/metrics/{metric['id']}/pass_rate/").json()
    assert raw_only["raw"]["value"] == 0.6 and raw_only["raw"]["n"] == 40 and raw_only["corrected"] is None
    # People reviewed 10 of its passes (8 right) and 10 of its fails (all right): TPR 1.0, TNR 10/12.
    for i, c in enumerate(calls[:10]):
        _vote(api, c, metric["id"], "agree" if i < 8 else "disagree", "checked at 00:10", None if i < 8 else False)
    for c in calls[24:34]:
        _vote(api, c, metric["id"], "agree", "checked at 00:10")
    out = api.get(f"/api/v1/metrics/{metric['id']}/pass_rate/").json()
    assert out["judge"]["tpr"]["value"] == 1.0 and round(out["judge"]["tnr"]["value"], 4) == round(10 / 12, 4)
    # (0.6 + 10/12 - 1) / (1 + 10/12 - 1) = 0.52
    corrected = out["corrected"]
    assert round(corrected["value"], 4) == 0.52
    assert corrected["low"] < 0.52 < corrected["high"] and corrected["n"] == 40
    enum = api.metric("intent", eval_type="enum", enum_values=["a", "b"])
    assert api.get(f"/api/v1/metrics/{enum['id']}/pass_rate/").json()["applicable"] is False


def test_agreement_is_never_pooled_across_versions_or_models(api: Api, db: Database) -> None:
    from sqlalchemy import update

    from judgelab.db.models import Metric, MetricResult
    from judgelab.labs.misalignment import metric_report
    from judgelab.labs.versions import agreement_by_version

    agent = api.agent()
    metric = api.metric("m", eval_type="binary_qualitative")["id"]
    calls = [api.call(agent, f"c{i}")["id"] for i in range(8)]
    # Model A gets every call right; model B (same version: JUDGELAB_MODEL changed) gets every call wrong.
    for i, c in enumerate(calls):
        truth = i % 2 == 0
        rid = add_result(db, c, metric, truth if i < 4 else not truth)
        with db.session() as s:
            s.execute(update(MetricResult).where(MetricResult.id == rid).values(model="openai/a" if i < 4 else "openai/b"))
        api.post(f"/observability/v1/call-logs-external/{c}/mark_metric_vote/",
                 json={"metric_id": metric, "vote": "agree" if i < 4 else "disagree", "expected_value": truth,
                       "feedback": "checked"})
    with db.session() as s:
        m = s.get(Metric, metric)
        assert m is not None
        report = metric_report(s, m)
        by_version = agreement_by_version(s, m)
    groups = {(v["version"], v["model"]): v for v in report.by_version}
    assert set(groups) == {(1, "openai/a"), (1, "openai/b")}
    assert groups[(1, "openai/a")]["agreement"]["accuracy"]["value"] == 1.0
    assert groups[(1, "openai/b")]["agreement"]["accuracy"]["value"] == 0.0
    assert report.agreement is not None and report.agreement["n"] == 4  # the latest model's, not a blend of both
    own = {(v["version"], v["model"]): v for v in by_version}
    assert own[(1, "openai/a")]["agreement"]["accuracy"]["value"] == 1.0 and own[(1, "openai/a")]["compared"] == 4
    assert own[(1, "openai/b")]["agreement"]["accuracy"]["value"] == 0.0
