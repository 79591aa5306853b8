from __future__ import annotations

import pytest

from tests.conftest import Api

M = "/test_framework/v1/metrics/"


def test_create_get_list_and_versions(api: Api) -> None:
    m = api.metric("greeting", eval_type="enum", enum_values=["new_customer", "existing_customer"])
    assert m["version"] == 1 and m["type"] == "llm_judge" and m["evaluation_trigger"] == "always"
    assert api.get(f"{M}{m['id']}/").json()["enum_values"] == ["new_customer", "existing_customer"]
    listed = api.get(M).json()
    assert listed["count"] == 1 and listed["results"][0]["name"] == "greeting"
    versions = api.get(f"{M}{m['id']}/versions/").json()
    assert versions["count"] == 1 and versions["results"][0]["change_note"] == "created"


def test_patch_makes_versions_only_for_judged_content(api: Api) -> None:
    m = api.metric()
    r = api.patch(f"{M}{m['id']}/", json={"name": "renamed"})
    assert r.status_code == 200 and r.json()["version"] == 1 and r.json()["new_version"] is False
    r = api.patch(f"{M}{m['id']}/", json={"description": "Stricter prompt", "change_note": "labs proposal 1"})
    assert r.json()["version"] == 2 and r.json()["new_version"] is True
    r = api.patch(f"{M}{m['id']}/", json={"description": "Stricter prompt"})
    assert r.json()["version"] == 2 and r.json()["new_version"] is False
    r = api.patch(f"{M}{m['id']}/", json={"evaluation_trigger": "custom", "trigger_type": "llm_judge",
                                          "evaluation_trigger_prompt": "Only calls about refunds"})
    assert r.json()["version"] == 3
    history = api.get(f"{M}{m['id']}/versions/").json()["results"]
    assert [v["version"] for v in history] == [1, 2, 3]
    assert history[0]["description"].startswith("Did the agent verify")  # old versions never change
    assert history[1]["change_note"] == "labs proposal 1"
    assert history[2]["evaluation_trigger_prompt"] == "Only calls about refunds"


def test_revert_is_itself_a_new_version(api: Api) -> None:
    m = api.metric()
    api.patch(f"{M}{m['id']}/", json={"description": "v2 prompt"})
    r = api.post(f"{M}{m['id']}/revert/", json={"version": 1})
    assert r.status_code == 200, r.text
    assert r.json()["version"] == 3 and r.json()["description"] == m["description"]
    history = api.get(f"{M}{m['id']}/versions/").json()
    assert history["current_version"] == 3 and history["results"][2]["change_note"] == "reverted to version 1"
    assert history["results"][2]["content_hash"] == history["results"][0]["content_hash"]
    r = api.post(f"{M}{m['id']}/revert/", json={"version": 9})
    assert r.status_code == 404 and r.json()["errors"][0]["field"] == "version"


def test_delete_hides_metric_and_frees_its_name(api: Api) -> None:
    m = api.metric("dup")
    assert api.post(M, json={"name": "dup", "description": "x"}).status_code == 409
    assert api.delete(f"{M}{m['id']}/").status_code == 204
    assert api.get(f"{M}{m['id']}/").status_code == 404
    assert api.get(f"{M}{m['id']}").status_code == 404
    assert api.get(M).json()["count"] == 0
    assert api.post(M, json={"name": "dup", "description": "x"}).status_code == 201


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"type": "basic"}, "type", "not supported"),
        ({"type": "custom_prompt"}, "type", "not supported"),
        ({"type": "regex"}, "type", "expected one of"),
        ({"eval_type": "enum"}, "enum_values", "required"),
        ({"eval_type": "enum", "enum_values": []}, "enum_values", "required"),
        ({"eval_type": "enum", "enum_values": ["a", "a"]}, "enum_values", "unique"),
        ({"enum_values": ["a"]}, "enum_values", "only allowed"),
        ({"eval_type": "score"}, "eval_type", "expected one of"),
        ({"description": ""}, "description", "judge prompt"),
        ({"type": "custom_code"}, "custom_code", "required"),
        ({"type": "custom_code", "custom_code": "def f(:\n"}, "custom_code", "not valid Python"),
        ({"evaluation_trigger": "sometimes"}, "evaluation_trigger", "expected one of"),
        ({"evaluation_trigger": "custom"}, "trigger_type", "required"),
        ({"evaluation_trigger": "custom", "trigger_type": "llm_judge"}, "evaluation_trigger_prompt", "required"),
        ({"evaluation_trigger": "custom", "trigger_type": "custom_code"}, "evaluation_trigger_custom_code", "required"),
        ({"model": "gpt4"}, "model", "provider/model"),
    ],
)
def test_invalid_definitions_are_400_naming_the_field(api: Api, body: dict, field: str, words: str) -> None:
    payload = {"name": "m", "description": "Judge prompt", **body}
    r = api.post(M, json=payload)
    assert r.status_code == 400, r.text
    assert any(e["field"] == field and words in e["message"] for e in r.json()["errors"]), r.json()
    assert api.get(M).json()["count"] == 0


def test_schema_errors_are_422_and_unknown_fields_refused(api: Api) -> None:
    r = api.post(M, json={"name": "m", "desciption": "typo"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "desciption"
    r = api.post(M, json={"description": "no name"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "name"
    m = api.metric()
    r = api.patch(f"{M}{m['id']}/", json={"eval_type": "enum"})
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "enum_values"
    r = api.patch(f"{M}{m['id']}/", json={"description": None})
    assert r.status_code == 400
    assert api.get(f"{M}{m['id']}/versions/").json()["count"] == 1


def test_switching_eval_type_away_from_enum_drops_values(api: Api) -> None:
    m = api.metric(eval_type="enum", enum_values=["a", "b"])
    r = api.patch(f"{M}{m['id']}/", json={"eval_type": "binary_workflow_adherence"})
    assert r.status_code == 200, r.text
    assert r.json()["enum_values"] is None and r.json()["version"] == 2


def test_custom_code_metric(api: Api) -> None:
    code = "_result = 'refund' in data['transcript']\n_explanation = 'looked for refund'\n"
    m = api.metric("mentions refund", type="custom_code", custom_code=code, description="")
    assert m["custom_code"] == code and m["type"] == "custom_code"


def test_metrics_that_read_each_other_in_a_cycle_are_refused(api: Api) -> None:
    api.metric("a", type="custom_code", custom_code="_result = data['b']\n_explanation = ''", description="")
    r = api.post(M, json={"name": "b", "type": "custom_code", "description": "",
                          "custom_code": "_result = data.get('a')\n_explanation = ''"})
    assert r.status_code == 400 and "cycle" in r.json()["detail"] and r.json()["errors"][0]["field"] == "custom_code"
    ok = api.metric("b", type="custom_code", custom_code="_result = 1\n_explanation = ''", description="")
    r = api.patch(f"{M}{ok['id']}/", json={"custom_code": "_result = data['a']\n_explanation = ''"})
    assert r.status_code == 400 and "'b' -> 'a' -> 'b'" in r.json()["detail"]
    assert api.get(f"{M}{ok['id']}/versions/").json()["count"] == 1
