"""The web UI without a browser: login sessions, CSRF, escaping, errors as pages, apply/discard."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import update

from judgelab.db import Database
from judgelab.db.models import ApiKey, WebSession
from judgelab.db.types import utcnow
from tests.conftest import Api, add_result


def _login(client: TestClient, key: str) -> str:
    r = client.post("/login", data={"api_key": key, "next": "/metrics"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/metrics"
    assert "judgelab_session" in r.headers["set-cookie"] and "HttpOnly" in r.headers["set-cookie"]
    assert key not in r.headers["set-cookie"]  # the cookie holds a session token, never the key
    page = client.get("/metrics").text
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match
    return match.group(1)


def test_pages_need_a_login_and_come_back_after_it(api: Api) -> None:
    client = api.client
    r = client.get("/calls?search=x", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login?next=/calls%3Fsearch%3Dx"
    bad = client.post("/login", data={"api_key": "jl_nope", "next": "/"})
    assert bad.status_code == 401 and "unknown or revoked" in bad.text
    # Only local paths are followed after login: no open redirect.
    for target in ("https://evil.example/", "//evil.example/x", "/\\evil"):
        r = client.post("/login", data={"api_key": api.key, "next": target}, follow_redirects=False)
        assert r.headers["location"] == "/"
    client.cookies.clear()
    client.cookies.set("judgelab_session", "nope")
    htmx = client.get("/calls", headers={"HX-Request": "true"}, follow_redirects=False)
    assert htmx.status_code == 204 and htmx.headers["HX-Redirect"] == "/login"


def test_transcripts_render_as_text(api: Api, db: Database) -> None:
    agent = api.agent()
    evil = "<script>alert(1)</script><img src=x onerror=alert(2)>"
    call = api.call(agent, "x1", evil, metadata={"note": "</pre><script>alert(3)</script>"})
    metric = api.metric()
    add_result(db, call["id"], metric["id"], True, explanation="<b>ok</b>")
    _login(api.client, api.key)
    for path in (f"/calls/{call['id']}", "/calls", f"/review?metric={metric['id']}"):
        page = api.client.get(path).text
        assert "<script>alert" not in page and "<img src=x" not in page and "<b>ok</b>" not in page
    page = api.client.get(f"/calls/{call['id']}").text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "&lt;b&gt;ok&lt;/b&gt;" in page


def test_forms_need_the_sessions_csrf_token(api: Api, db: Database) -> None:
    agent = api.agent()
    call = api.call(agent, "c1")
    metric = api.metric()
    add_result(db, call["id"], metric["id"], True)
    csrf = _login(api.client, api.key)
    body = {"metric_id": str(metric["id"]), "vote": "disagree", "expected_value": "false", "feedback": "At 00:03 no check."}
    assert api.client.post(f"/calls/{call['id']}/vote", data=body).status_code == 403
    assert api.client.post(f"/calls/{call['id']}/vote", data={**body, "csrf_token": "x" * len(csrf)}).status_code == 403
    ok = api.client.post(f"/calls/{call['id']}/vote", data={**body, "csrf_token": csrf}, follow_redirects=False)
    assert ok.status_code == 303
    htmx = api.client.post(f"/calls/{call['id']}/vote", data=body, headers={"HX-Request": "true", "X-CSRF-Token": csrf})
    assert htmx.status_code == 200 and "Feedback saved." in htmx.text
    feedback = api.get(f"/test_framework/v1/metrics/{metric['id']}/feedback/").json()
    assert feedback["count"] == 1 and feedback["results"][0]["label"] is False


def test_bad_input_is_a_page_naming_the_problem(api: Api) -> None:
    csrf = _login(api.client, api.key)
    r = api.client.get("/calls/999999")
    assert r.status_code == 404 and "text/html" in r.headers["content-type"] and "999999" in r.text
    r = api.client.get("/calls?since=yesterday")
    assert r.status_code == 400 and "since" in r.text and "2024-05-01T08:00" in r.text
    r = api.client.post("/evaluate", data={"csrf_token": csrf, "action": "estimate"})
    assert r.status_code == 400 and "choose at least one metric" in r.text
    assert api.client.get("/no/such/page").status_code == 404
    # The API keeps answering JSON.
    assert api.get("/api/v1/jobs/nope/").headers["content-type"].startswith("application/json")


def test_a_revoked_key_or_an_expired_session_logs_out(api: Api, db: Database) -> None:
    _login(api.client, api.key)
    assert api.client.get("/calls", follow_redirects=False).status_code == 200
    with db.session() as s:
        s.execute(update(WebSession).values(expires_at=utcnow() - timedelta(seconds=1)))
    assert api.client.get("/calls", follow_redirects=False).status_code == 303
    _login(api.client, api.key)
    with db.session() as s:
        s.execute(update(ApiKey).values(revoked_at=utcnow()))
    assert api.client.get("/calls", follow_redirects=False).status_code == 303


def test_logout_ends_the_session_server_side(api: Api) -> None:
    csrf = _login(api.client, api.key)
    cookie = api.client.cookies.get("judgelab_session")
    r = api.client.post("/logout", data={"csrf_token": csrf}, follow_redirects=False)
    assert r.status_code == 303
    # Even a copy of the old cookie no longer opens pages.
    assert cookie
    api.client.cookies.set("judgelab_session", cookie)
    r = api.client.get("/calls", follow_redirects=False)
    assert r.status_code == 303


def test_a_labs_question_is_answered_in_place(api: Api, db: Database) -> None:
    import uuid

    from judgelab.db.models import LabsRun, Metric

    metric = api.metric("confirms", eval_type="binary_workflow_adherence")
    run_id = str(uuid.uuid4())
    with db.session() as s:
        version_id = s.get(Metric, metric["id"]).current.id  # type: ignore[union-attr]
        s.add(LabsRun(id=run_id, project_id=api.project_id, metric_id=metric["id"], metric_version_id=version_id,
                      status="needs_input", stage="contradictions", params={}, progress={"labelled": 7},
                      question={"text": "2 labels on the same conversation disagree (False, True). Which is right?",
                                "conflicts": 1, "items": [
                                    {"key": "a", "label": True, "reason": "<i>paraphrase</i> ok", "reviewer": "ana", "call_log_id": None},
                                    {"key": "b", "label": False, "reason": "needs a yes", "reviewer": "bo", "call_log_id": None}]}))
    csrf = _login(api.client, api.key)
    page = api.client.get(f"/labs/{run_id}").text
    assert "Which is right?" in page and "&lt;i&gt;paraphrase&lt;/i&gt; ok" in page and "Answer and resume" in page
    # While it waits, the status poll asks the page to reload (the question is part of the page).
    poll = api.client.get(f"/labs/{run_id}/status", headers={"HX-Request": "true"})
    assert poll.status_code == 204 and poll.headers["HX-Refresh"] == "true"
    bad = api.client.post(f"/labs/{run_id}/answer", data={"csrf_token": csrf, "answer": "maybe"})
    assert bad.status_code == 400 and "answer" in bad.text
    ok = api.client.post(f"/labs/{run_id}/answer", data={"csrf_token": csrf, "answer": "true"}, follow_redirects=False)
    assert ok.status_code == 303
    with db.session() as s:
        assert s.get(LabsRun, run_id).answer == {"answer": True}  # type: ignore[union-attr]


def test_bad_form_values_are_400_pages_never_500(api: Api, db: Database) -> None:
    agent = api.agent()
    call = api.call(agent, "c1")
    metric = api.metric()
    add_result(db, call["id"], metric["id"], True)
    csrf = _login(api.client, api.key)
    cases = [
        (f"/calls/{call['id']}/vote", {"metric_id": "abc", "vote": "agree"}, "metric_id"),
        (f"/calls/{call['id']}/vote", {"metric_id": str(metric["id"]), "vote": "maybe"}, "vote"),
        (f"/calls/{call['id']}/vote", {"metric_id": str(metric["id"]), "vote": "disagree", "expected_value": "blue"}, "expected_value"),
        (f"/calls/{call['id']}/vote", {"metric_id": "99999999999", "vote": "agree"}, "metric_id"),
        ("/review", {"metric_id": str(metric["id"]), "call_id": "x", "vote": "agree"}, "call_id"),
        (f"/metrics/{metric['id']}/revert", {"version": "-1"}, "version"),
        (f"/metrics/{metric['id']}/validate", {"sample": "lots"}, "sample"),
        (f"/metrics/{metric['id']}/labs", {"max_judge_calls": "3"}, "max_judge_calls"),
    ]
    for path, data, field in cases:
        r = api.client.post(path, data={**data, "csrf_token": csrf})
        assert r.status_code == 400, (path, data, r.status_code, r.text[:300])
        assert field in r.text and "text/html" in r.headers["content-type"], (path, r.text[:300])
    assert api.get(f"/test_framework/v1/metrics/{metric['id']}/feedback/").json()["count"] == 0  # nothing written


def test_a_random_audit_in_the_browser_is_blind_and_recorded(app_client: Any, db: Any) -> None:
    from tests.conftest import Api, add_result, make_key

    key, project_id = make_key(db, "acme")
    api = Api(app_client, key, project_id)
    agent = api.agent()
    metric = api.metric()["id"]
    calls = [api.call(agent, f"c{i}", f"call {i}")["id"] for i in range(3)]
    for c in calls:
        add_result(db, c, metric, True, "looks verified")
    page = app_client.post("/login", data={"api_key": key}, follow_redirects=False)
    csrf = app_client.get(f"/review?metric={metric}").text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    started = app_client.post("/review/audit", data={"csrf_token": csrf, "metric_id": metric, "size": 2}, follow_redirects=False)
    assert started.status_code == 303 and page.status_code == 303
    audit = app_client.get(started.headers["location"])
    assert audit.status_code == 200 and "0 of 2" in audit.text and "looks verified" not in audit.text  # blind
    call_id = int(audit.text.split('name="call_id" value="', 1)[1].split('"', 1)[0])
    empty = app_client.post(started.headers["location"], data={"csrf_token": csrf, "call_id": call_id, "expected_value": ""})
    assert empty.status_code == 400 and "expected_value" in empty.text
    saved = app_client.post(started.headers["location"], data={"csrf_token": csrf, "call_id": call_id,
                                                               "expected_value": "false", "feedback": "no id check"})
    assert saved.status_code == 200 and "1 of 2" in saved.text and "the judge had said" in saved.text
    fb = api.get(f"/test_framework/v1/metrics/{metric}/feedback/").json()["results"][0]
    assert (fb["source"], fb["vote"], fb["label"]) == ("random_audit", "disagree", False) and fb["audit_sample_id"]
