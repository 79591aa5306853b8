"""Creating and editing a metric in the browser's forms: every kind, problems shown beside their fields,
nothing typed lost, and an unchanged form makes no new version."""

from __future__ import annotations

from typing import Any

from tests.conftest import Api
from tests.web.test_pages import _login

BASE = {"name": "", "type": "llm_judge", "eval_type": "binary_qualitative", "model": "", "enum_values": "",
        "description": "", "custom_code": "", "evaluation_trigger": "always", "trigger_type": "llm_judge",
        "label_tolerance": "", "evaluation_trigger_prompt": "", "evaluation_trigger_custom_code": ""}


def _post(api: Api, url: str, csrf: str, **fields: Any) -> Any:
    return api.client.post(url, data={**BASE, **fields, "csrf_token": csrf}, follow_redirects=False)


def test_create_and_edit_a_metric_through_the_form(api: Api) -> None:
    csrf = _login(api.client, api.key)
    page = api.client.get("/metrics/new")
    assert page.status_code == 200 and 'id="metric-form"' in page.text
    r = _post(api, "/metrics/new", csrf, name="intent", eval_type="enum", enum_values="cancel\nchange, other",
              description="What does the caller want?", evaluation_trigger="custom", trigger_type="llm_judge",
              evaluation_trigger_prompt="The caller asks for something.")
    assert r.status_code == 303, r.text
    metric_id = int(r.headers["location"].rsplit("/", 1)[1])
    metric = api.get(f"/test_framework/v1/metrics/{metric_id}/").json()
    assert (metric["eval_type"], metric["enum_values"], metric["evaluation_trigger"], metric["trigger_type"]) == (
        "enum", ["cancel", "change", "other"], "custom", "llm_judge")
    assert metric["evaluation_trigger_prompt"] == "The caller asks for something."

    # The edit form shows the current content; saving it unchanged makes no new version.
    edit = api.client.get(f"/metrics/{metric_id}/edit").text
    assert "What does the caller want?" in edit and "cancel\nchange\nother" in edit
    same = {**BASE, "name": "intent", "eval_type": "enum", "enum_values": "cancel\nchange\nother",
            "description": "What does the caller want?", "evaluation_trigger": "custom", "trigger_type": "llm_judge",
            "evaluation_trigger_prompt": "The caller asks for something."}
    assert _post(api, f"/metrics/{metric_id}/edit", csrf, **same).status_code == 303
    assert api.get(f"/test_framework/v1/metrics/{metric_id}/").json()["version"] == 1
    changed = {**same, "description": "What does the caller want, in one word?", "change_note": "sharper"}
    assert _post(api, f"/metrics/{metric_id}/edit", csrf, **changed).status_code == 303
    after = api.get(f"/test_framework/v1/metrics/{metric_id}/").json()
    assert after["version"] == 2 and after["description"] == "What does the caller want, in one word?"


def test_a_refused_form_keeps_what_was_typed_and_names_the_field(api: Api) -> None:
    csrf = _login(api.client, api.key)
    code = "def broken(:\n    pass"
    r = _post(api, "/metrics/new", csrf, name="code one", type="custom_code", custom_code=code, description="x")
    assert r.status_code == 400 and 'id="form-errors"' in r.text
    assert 'data-field="custom_code"' in r.text and "def broken(:" in r.text  # nothing typed is lost
    r = _post(api, "/metrics/new", csrf, name="enum one", eval_type="enum", enum_values="", description="Which?")
    assert r.status_code == 400 and 'data-field="enum_values"' in r.text
    r = _post(api, "/metrics/new", csrf, name="trigger one", description="x", evaluation_trigger="custom",
              trigger_type="custom_code", evaluation_trigger_custom_code="_result = (")
    assert r.status_code == 400 and 'data-field="evaluation_trigger_custom_code"' in r.text
    assert api.get("/test_framework/v1/metrics/").json()["count"] == 0
    ok = _post(api, "/metrics/new", csrf, name="code one", type="custom_code", description="",
               custom_code="_result = 'yes' in data['transcript']\n_explanation = 'looked for yes'")
    assert ok.status_code == 303
    assert api.client.get("/metrics").text.count('href="/metrics/new"') >= 1
