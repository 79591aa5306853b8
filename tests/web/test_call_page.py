"""The call page: every reviewer's vote with its version, numbered turns, tool names in the folds, and
the agent description as markdown with raw HTML escaped."""

from __future__ import annotations

from judgelab.db import Database
from tests.conftest import Api, add_result
from tests.web.test_pages import _login


def test_the_call_page_shows_votes_turn_numbers_tools_and_safe_markdown(api: Api, db: Database) -> None:
    _login(api.client, api.key)
    agent = api.agent(description="# Booking\n\n- **Always** confirm\n\n<script>alert(1)</script>\n\n[x](javascript:alert(1))")
    call = api.post("/observability/v1/observe/", json={"agent": agent, "call_id": "t1", "transcript_type": "openai",
                                                        "transcript_json": [
        {"role": "user", "content": "Cancel my booking"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "cancel_reservation", "arguments": "{\"id\": \"ZFA04Y\"}"}}]},
        {"role": "tool", "tool_call_id": "c1", "name": "cancel_reservation", "content": "ok"},
        {"role": "assistant", "content": "Done."}]}).json()["id"]
    metric = api.metric("confirms")["id"]
    add_result(db, call, metric, False, "no confirmation")
    for reviewer, vote in (("ana", "disagree"), ("bo", "agree")):
        body = {"metric_id": metric, "vote": vote, "feedback": f"{reviewer} checked", "reviewer": reviewer}
        if vote == "disagree":
            body["expected_value"] = True
        assert api.post(f"/observability/v1/call-logs-external/{call}/mark_metric_vote/", json=body).status_code in (200, 201)
    page = api.client.get(f"/calls/{call}").text
    assert "<strong>ana</strong>: disagree on v1" in page and "<strong>bo</strong>: agree on v1" in page
    assert 'id="turn-1"' in page and "#1</span>" in page and "#4</span>" in page
    assert "tool call: <code>cancel_reservation({&#34;id&#34;: &#34;ZFA04Y&#34;})</code>" in page
    assert "tool result: <code>cancel_reservation</code>" in page
    assert "<h1>Booking</h1>" in page and "<strong>Always</strong>" in page
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;" in page  # raw HTML is escaped
    assert 'href="javascript:' not in page
