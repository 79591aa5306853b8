"""Key scopes: only admin keys create projects; keys are listed and revoked; revocation is immediate
here and within a second in another process; model allow-lists; local model files for admins only."""

from __future__ import annotations

import time

from fastapi.testclient import TestClient

from judgelab.api.app import create_app
from judgelab.db import Database
from tests.conftest import Api


def test_only_admin_keys_create_projects(api: Api, admin_api: Api) -> None:
    r = api.post("/api/v1/projects/", json={"name": "sneaky"})
    assert r.status_code == 403 and r.json()["errors"][0]["field"] == "name" and "admin" in r.json()["detail"]
    assert admin_api.post("/api/v1/projects/", json={"name": "sneaky"}).status_code == 201
    # A project key cannot mint an admin key, nor a key for another project.
    assert api.post("/api/v1/keys/", json={"admin": True}).status_code == 403
    assert api.post("/api/v1/keys/", json={"project": 999}).status_code == 403
    made = api.post("/api/v1/keys/", json={"name": "ci"})
    assert made.status_code == 201 and made.json()["admin"] is False and made.json()["api_key"].startswith("jl_")
    assert api.client.post("/api/v1/projects/", json={"name": "x"},
                           headers={"X-API-Key": made.json()["api_key"]}).status_code == 403


def test_keys_are_listed_and_revoked_at_once(api: Api, other_api: Api, admin_api: Api) -> None:
    listed = api.get("/api/v1/keys/").json()
    assert {k["project"] for k in listed["results"]} == {api.project_id}
    assert all("key_hash" not in k and "api_key" not in k for k in listed["results"])
    assert len(admin_api.get("/api/v1/keys/").json()["results"]) == 3  # every project's
    other_id = next(k["id"] for k in admin_api.get("/api/v1/keys/").json()["results"] if k["project"] == other_api.project_id)
    assert api.post(f"/api/v1/keys/{other_id}/revoke/").status_code == 404  # not this project's key
    assert other_api.get("/api/v1/projects/").status_code == 200  # cached now
    revoked = admin_api.post(f"/api/v1/keys/{other_id}/revoke/")
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    assert other_api.get("/api/v1/projects/").status_code == 401  # at once, although it was cached


def test_a_key_revoked_elsewhere_stops_within_a_second(api: Api, db: Database, settings) -> None:
    with TestClient(create_app(settings, db)) as second:  # another process's app and key cache
        assert second.get("/api/v1/projects/", headers=api.headers).status_code == 200
        mine = api.get("/api/v1/keys/").json()["results"][0]["id"]
        assert api.post(f"/api/v1/keys/{mine}/revoke/").status_code == 200
        deadline = time.monotonic() + 1.5
        while second.get("/api/v1/projects/", headers=api.headers).status_code == 200:
            assert time.monotonic() < deadline, "the revoked key still worked in the other app after 1.5 s"
            time.sleep(0.05)


def test_model_allow_list_and_local_files(api: Api, admin_api: Api) -> None:
    assert api.patch(f"/api/v1/projects/{api.project_id}/", json={"allowed_models": ["openai/gpt-4.1-mini"]}).status_code == 403
    r = admin_api.patch(f"/api/v1/projects/{api.project_id}/", json={"allowed_models": ["openai/gpt-4.1-mini", "local/x.gguf"]})
    assert r.status_code == 200 and r.json()["allowed_models"] == ["openai/gpt-4.1-mini", "local/x.gguf"]
    bad = api.post("/test_framework/v1/metrics/", json={"name": "m", "description": "d", "model": "openai/gpt-5"})
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "model" and "allow-list" in bad.json()["detail"]
    ok = api.post("/test_framework/v1/metrics/", json={"name": "m", "description": "d", "model": "openai/gpt-4.1-mini"})
    assert ok.status_code == 201
    local = api.patch(f"/test_framework/v1/metrics/{ok.json()['id']}/", json={"model": "local/x.gguf"})
    assert local.status_code == 403 and local.json()["errors"][0]["field"] == "model"
    assert admin_api.patch(f"/test_framework/v1/metrics/{ok.json()['id']}/", json={"model": "local/x.gguf"}).status_code == 200
    assert api.get(f"/test_framework/v1/metrics/{ok.json()['id']}/").json()["model"] == "local/x.gguf"
