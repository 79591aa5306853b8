from __future__ import annotations

from tests.conftest import Api, add_result


def test_key_headers(api: Api) -> None:
    c = api.client
    url = "/api/v1/projects/"
    assert c.get(url).status_code == 401
    assert "Authorization: Bearer" in c.get(url).json()["detail"]
    assert c.get(url, headers={"Authorization": "Bearer nope"}).status_code == 401
    for headers in (
        {"Authorization": f"Bearer {api.key}"},
        {"authorization": f"bearer {api.key}"},
        {"X-API-Key": api.key},
        {"X-CEKURA-API-KEY": api.key},
    ):
        r = c.get(url, headers=headers)
        assert r.status_code == 200, headers
        assert r.json()["results"][0]["name"] == "acme"
    assert c.get("/healthz").json()["status"] == "ok"


def test_keys_are_stored_only_as_hashes(api: Api, db) -> None:
    from sqlalchemy import select

    from judgelab.db.models import ApiKey

    with db.session() as s:
        rows = s.scalars(select(ApiKey)).all()
    assert rows and all(api.key not in (r.key_hash, r.prefix, r.name) for r in rows)
    assert all(len(r.key_hash) == 64 for r in rows)


def test_projects_and_agents(admin_api: Api) -> None:
    api = admin_api
    r = api.post("/api/v1/projects/", json={"name": "newco", "description": "d"})
    assert r.status_code == 201 and r.json()["api_key"].startswith("jl_")
    new_key = r.json()["api_key"]
    assert api.post("/api/v1/projects/", json={"name": "newco"}).status_code == 409
    # The new key sees the new project, the old key keeps seeing its own.
    mine = api.client.get("/api/v1/projects/", headers={"X-API-Key": new_key}).json()
    assert mine["count"] == 1 and mine["results"][0]["name"] == "newco"
    assert api.get("/api/v1/projects/").json()["results"][0]["name"] == "acme"
    agent = api.agent("bot")
    assert api.post("/api/v1/agents/", json={"name": "bot"}).status_code == 409
    listed = api.get("/api/v1/agents/").json()
    assert listed["count"] == 1 and listed["results"][0]["num_calls"] == 0
    assert api.get(f"/api/v1/agents/{agent}/").json()["name"] == "bot"
    assert api.get(f"/api/v1/projects/{api.project_id}/").status_code == 200
    assert api.post("/api/v1/agents/", json={"name": "x", "project": 9999}).status_code == 404


def test_another_projects_objects_answer_404(api: Api, other_api: Api, db) -> None:
    agent = api.agent()
    call = api.call(agent)
    metric = api.metric()
    add_result(db, call["id"], metric["id"], True)
    ts = api.post("/test_framework/test-sets/create_from_call_log/",
                  json={"call_log_id": call["id"], "metrics": [{"metric": metric["id"], "feedback": "ok"}]}).json()
    other_agent = other_api.agent()
    other_metric = other_api.metric()
    for path in (
        f"/observability/v1/call-logs-external/{call['id']}/",
        f"/observability/v1/call-logs/{call['id']}/",
        f"/test_framework/v1/metrics/{metric['id']}/",
        f"/test_framework/v1/metrics/{metric['id']}/versions/",
        f"/test_framework/v1/metrics/{metric['id']}/feedback/",
        f"/test_framework/test-sets/{ts['id']}/",
        f"/api/v1/agents/{agent}/",
        f"/api/v1/projects/{api.project_id}/",
    ):
        r = other_api.get(path)
        assert r.status_code == 404, path
        assert "verify" not in r.text and "change my flight" not in r.text
    assert other_api.get("/observability/v1/call-logs-external/").json()["count"] == 0
    assert other_api.get("/observability/v1/call-logs-external/", params={"agent": agent}).status_code == 404
    assert other_api.get("/observability/v1/call-logs-external/", params={"project": api.project_id}).status_code == 404
    assert other_api.get("/test_framework/v1/metrics/").json()["count"] == 1
    assert other_api.get("/test_framework/test-sets/").json()["count"] == 0
    # Writes across projects are refused too, and change nothing.
    assert other_api.patch(f"/test_framework/v1/metrics/{metric['id']}/", json={"description": "hijack"}).status_code == 404
    assert other_api.delete(f"/test_framework/v1/metrics/{metric['id']}/").status_code == 404
    assert other_api.post(f"/test_framework/v1/metrics/{metric['id']}/revert/", json={"version": 1}).status_code == 404
    r = other_api.post(f"/observability/v1/call-logs-external/{call['id']}/mark_metric_vote/",
                       json={"metric_id": other_metric["id"], "vote": "disagree"})
    assert r.status_code == 404
    r = other_api.post("/observability/v1/call-logs-external/1/mark_metric_vote/",
                       json={"metric_id": metric["id"], "vote": "disagree"})
    assert r.status_code == 404
    r = other_api.post("/observability/v1/observe/", json={"agent": agent, "transcript": "User: hi"})
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "agent"
    r = other_api.post("/test_framework/test-sets/create_from_call_log/",
                       json={"call_log_id": call["id"], "metrics": [{"metric": other_metric["id"]}]})
    assert r.status_code == 404
    r = other_api.post("/test_framework/v1/metrics/", json={"name": "n", "description": "d", "agent": agent})
    assert r.status_code == 404
    assert api.get(f"/test_framework/v1/metrics/{metric['id']}/").json()["description"].startswith("Did the agent")
    assert other_agent != agent
