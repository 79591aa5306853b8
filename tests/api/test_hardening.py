"""What the security audit found at the doors: surrogates, NULs, huge pages, chunked bodies, headers,
login throttling, cookies behind a proxy, 405s, and a schema that documents the error answers."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi.testclient import TestClient

from judgelab.api.app import create_app
from tests.conftest import Api


def _raw(api: Api, path: str, body: bytes) -> object:
    return api.post(path, content=body, headers={"content-type": "application/json"})


def test_a_lone_surrogate_is_a_400_naming_the_field(api: Api) -> None:
    r = _raw(api, "/api/v1/agents/", b'{"name": "bot", "description": "x \\ud800 y"}')
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "description"  # type: ignore[attr-defined]
    r = _raw(api, "/test_framework/v1/metrics/", b'{"name": "m", "description": "\\udfff"}')
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "description"  # type: ignore[attr-defined]
    agent = api.agent()
    r = _raw(api, "/observability/v1/observe/",
             f'{{"agent": {agent}, "transcript_json": [{{"role": "user", "content": "\\ud83d"}}]}}'.encode())
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "transcript_json[0].content"  # type: ignore[attr-defined]
    # A surrogate pair is an ordinary character (an emoji) and is stored.
    ok = _raw(api, "/test_framework/v1/metrics/", b'{"name": "smile", "description": "\\ud83d\\ude00 ok"}')
    assert ok.status_code == 201 and ok.json()["description"] == "\U0001F600 ok"  # type: ignore[attr-defined]
    assert api.get("/api/v1/agents/").json()["count"] == 1  # nothing of the refused requests was stored


def test_nul_in_names_and_absurd_pages(api: Api) -> None:
    for path, body in (("/api/v1/agents/", {"name": "a\x00b"}), ("/test_framework/v1/metrics/", {"name": "m\x00", "description": "d"})):
        r = api.post(path, json=body)
        assert r.status_code == 400 and r.json()["errors"][0]["field"] == "name", r.text
    metric = api.metric()
    r = api.patch(f"/test_framework/v1/metrics/{metric['id']}/", json={"name": "x\x00y"})
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "name"
    assert api.get("/observability/v1/call-logs-external/", params={"page": 400000000000000000}).status_code == 400


def test_a_chunked_body_over_the_limit_is_a_413(api: Api) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(25):
            yield b" " * 1_000_000

    r = api.post("/observability/v1/observe/", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413 and "larger than the limit" in r.json()["detail"]


def test_security_headers(api: Api) -> None:
    for path in ("/login", "/api/v1/projects/", "/healthz"):
        r = api.get(path)
        csp = r.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp and "unsafe-eval" not in csp
        assert r.headers["x-content-type-options"] == "nosniff" and r.headers["referrer-policy"] == "same-origin"
    page = api.get("/login").text
    assert "<script>" not in page  # no inline script anywhere the CSP would have to allow


def test_the_review_page_has_no_inline_script() -> None:
    from pathlib import Path

    import judgelab.web

    templates = Path(judgelab.web.__file__).parent / "templates"
    for template in templates.glob("*.html"):
        assert "<script>" not in template.read_text(), template.name


def test_login_is_throttled_per_address(api: Api) -> None:
    for _ in range(10):
        assert api.client.post("/login", data={"api_key": "jl_wrong"}).status_code == 401
    r = api.client.post("/login", data={"api_key": api.key})
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 0  # even the right key waits


def test_secure_cookie_behind_a_trusted_proxy(db, settings) -> None:
    from tests.conftest import make_key

    key, _ = make_key(db, "acme")
    forwarded = {"x-forwarded-proto": "https"}
    with TestClient(create_app(settings, db)) as plain:
        r = plain.post("/login", data={"api_key": key}, headers=forwarded, follow_redirects=False)
        assert r.status_code == 303 and "secure" not in r.headers["set-cookie"].lower()
    trusting = settings.model_copy(update={"trust_proxy": True})
    with TestClient(create_app(trusting, db)) as proxied:
        r = proxied.post("/login", data={"api_key": key}, headers=forwarded, follow_redirects=False)
        assert r.status_code == 303 and "secure" in r.headers["set-cookie"].lower()


def test_get_on_a_post_only_path_is_a_405(api: Api) -> None:
    for path in ("/observability/v1/call-logs/evaluate_metrics/", "/observability/v1/call-logs/rerun_evaluation/",
                 "/test_framework/metric-reviews/process_feedbacks/"):
        r = api.get(path)
        assert r.status_code == 405 and "POST" in r.headers["allow"], (path, r.status_code, r.text)


def test_the_schema_documents_errors_and_bounds(api: Api) -> None:
    schema = api.get("/openapi.json").json()
    assert "Error" in schema["components"]["schemas"] and "HTTPValidationError" not in schema["components"]["schemas"]
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            assert {"400", "404", "409", "413", "422"} <= set(operation["responses"]), (method, path)
    listing = schema["paths"]["/observability/v1/call-logs-external/"]["get"]["parameters"]
    size = next(p for p in listing if p["name"] == "page_size")["schema"]
    bounds = next((o for o in size.get("anyOf", [size]) if o.get("type") == "integer"))
    assert (bounds["minimum"], bounds["maximum"]) == (1, 200)
    # The 422 body has the documented shape.
    bad = api.post("/api/v1/agents/", json={"name": 5})
    assert bad.status_code == 422 and set(bad.json()) == {"detail", "errors"} and bad.json()["errors"][0]["field"] == "name"
