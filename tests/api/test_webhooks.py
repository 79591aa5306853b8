"""Voice platforms' end-of-call webhooks: signed, mapped to turns, idempotent on the platform's call id.

The fixtures in tests/api/webhooks/ follow each platform's documented event shape (Vapi's
end-of-call-report, Retell's call_ended / call_analyzed, ElevenLabs' post_call_transcription)."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import time
from pathlib import Path
from typing import Any

import pytest

from judgelab.calls.platforms import dumps
from tests.conftest import Api

HERE = Path(__file__).with_name("webhooks")
SECRET = "whsec-test-0123456789"


def fixture(name: str) -> dict[str, Any]:
    return json.loads((HERE / name).read_text())


def _hex(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signed(platform: str, body: bytes, secret: str = SECRET, at: float | None = None) -> dict[str, str]:
    at = time.time() if at is None else at
    if platform == "vapi":
        return {"X-Vapi-Secret": secret}
    if platform == "retell":
        stamp = str(int(at * 1000))
        return {"x-retell-signature": f"v={stamp},d={_hex(secret, body + stamp.encode())}"}
    stamp = str(int(at))
    return {"ElevenLabs-Signature": f"t={stamp},v0={_hex(secret, stamp.encode() + b'.' + body)}"}


def send(api: Api, platform: str, body: Any, headers: dict[str, str] | None = None) -> Any:
    raw = body if isinstance(body, bytes) else dumps(body)
    return api.client.post(f"/webhooks/{platform}/{api.project_id}", content=raw,
                           headers={"Content-Type": "application/json", **(signed(platform, raw) if headers is None else headers)})


@pytest.fixture
def configured(admin_api: Api) -> Api:
    for platform in ("vapi", "retell", "elevenlabs"):
        r = admin_api.put(f"/api/v1/webhooks/{platform}/secret", json={"secret": SECRET})
        assert r.status_code == 200 and r.json() == {"platform": platform, "configured": True,
                                                     "url": f"/webhooks/{platform}/{admin_api.project_id}/"}
    return admin_api


def test_vapi_end_of_call_report(configured: Api) -> None:
    event = fixture("vapi-end-of-call-report.json")
    r = send(configured, "vapi", event)
    assert r.status_code == 201, r.text
    out = r.json()
    assert out["status"] == "stored" and out["call_id"] == "c5f0a0d2-7a2e-4d3b-9e3b-1f1a3b0c9d21" and out["created"] is True
    call = configured.get(f"/observability/v1/call-logs-external/{out['call_log_id']}/").json()
    roles = [t["role"] for t in call["transcript_json"]]
    assert roles == ["agent", "user", "tool_call", "tool_result", "agent", "user"]
    assert call["transcript_json"][0]["start_time"] == 1.44 and call["transcript_json"][0]["end_time"] == pytest.approx(3.89)
    assert "find_slots" in call["transcript_json"][2]["content"] and call["transcript_json"][3]["name"] == "find_slots"
    assert call["agent_description"] == "You book and move dental appointments."
    assert call["call_ended_reason"] == "customer-ended-call" and call["voice_recording_url"].endswith("mono.wav")
    assert call["dynamic_variables"] == {"patient_name": "Ada"} and call["metadata"]["source_platform"] == "vapi"
    assert call["metadata"]["vapi"]["cost"] == 0.1132
    # A retried delivery is the same call, not a second one.
    again = send(configured, "vapi", event)
    assert again.status_code == 200 and again.json()["call_log_id"] == out["call_log_id"] and again.json()["created"] is False
    assert configured.get("/observability/v1/call-logs-external/").json()["count"] == 1
    # Vapi's HMAC credential form is accepted too; other server messages are acknowledged and not stored.
    raw = dumps({"message": {"type": "status-update", "status": "in-progress"}})
    stamp = str(int(time.time()))
    hmac_headers = {"x-signature": _hex(SECRET, stamp.encode() + b"." + raw), "x-timestamp": stamp}
    ignored = send(configured, "vapi", raw, hmac_headers)
    assert ignored.status_code == 200 and ignored.json()["status"] == "ignored"
    assert send(configured, "vapi", event, {"X-Vapi-Secret": "wrong-secret"}).status_code == 401


def test_retell_call_ended_then_call_analyzed_is_one_call(configured: Api) -> None:
    ended = fixture("retell-call-ended.json")
    first = send(configured, "retell", ended)
    assert first.status_code == 201, first.text
    analyzed = copy.deepcopy(ended)
    analyzed["event"] = "call_analyzed"
    analyzed["call"]["call_analysis"] = {"call_summary": "Order cancelled.", "user_sentiment": "Neutral"}
    second = send(configured, "retell", analyzed)
    assert second.status_code == 200 and second.json()["call_log_id"] == first.json()["call_log_id"]
    call = configured.get(f"/observability/v1/call-logs-external/{first.json()['call_log_id']}/").json()
    assert [t["role"] for t in call["transcript_json"]] == ["agent", "user", "tool_call", "tool_result", "agent"]
    assert (call["transcript_json"][1]["start_time"], call["transcript_json"][1]["end_time"]) == (3.1, 4.6)
    assert call["transcript_json"][2]["tool_calls"][0]["function"]["name"] == "cancel_order"
    assert call["metadata"]["retell"]["call_analysis"]["call_summary"] == "Order cancelled."
    assert call["metadata"]["crm_id"] == "A-17" and call["dynamic_variables"] == {"customer_name": "John Doe"}
    assert call["duration"] == pytest.approx(58.44) and call["call_ended_reason"] == "user_hangup"
    started = send(configured, "retell", {"event": "call_started", "call": {"call_id": "x"}})
    assert started.status_code == 200 and started.json()["status"] == "ignored"
    raw = dumps(ended)
    stale = send(configured, "retell", raw, signed("retell", raw, at=time.time() - 3600))
    assert stale.status_code == 401 and "replay" in stale.json()["detail"]
    forged = send(configured, "retell", raw, signed("retell", raw, secret="not-the-key-at-all"))
    assert forged.status_code == 401 and "does not match" in forged.json()["detail"]


def test_elevenlabs_post_call_transcription(configured: Api) -> None:
    event = fixture("elevenlabs-post-call-transcription.json")
    r = send(configured, "elevenlabs", event)
    assert r.status_code == 201, r.text
    call = configured.get(f"/observability/v1/call-logs-external/{r.json()['call_log_id']}/").json()
    assert [t["role"] for t in call["transcript_json"]] == ["agent", "user", "tool_call", "tool_result", "agent"]
    assert call["transcript_json"][2]["content"] == 'order_status({"order": 88})'
    assert call["transcript_json"][3]["content"] == '{"status": "ready"}' and call["transcript_json"][4]["start_time"] == 8.0
    assert call["call_id"] == "conv_01jxy2k3m4" and call["duration"] == 22.0
    assert call["dynamic_variables"] == {"shop": "Main St"} and call["metadata"]["elevenlabs"]["analysis"]["call_successful"] == "success"
    broken = copy.deepcopy(event)
    del broken["data"]["transcript"]
    bad = send(configured, "elevenlabs", broken)
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "data.transcript"
    wrong_role = copy.deepcopy(event)
    wrong_role["data"]["transcript"][0]["role"] = "narrator"
    bad = send(configured, "elevenlabs", wrong_role)
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "transcript_json[0].role"


def test_secrets_are_per_project_and_admin_only(configured: Api, api: Api) -> None:
    assert api.put("/api/v1/webhooks/vapi/secret", json={"secret": SECRET}).status_code == 403
    nowhere = api.client.post("/webhooks/vapi/999999", content=b"{}", headers=signed("vapi", b"{}"))
    assert nowhere.status_code == 404
    assert configured.delete("/api/v1/webhooks/vapi/secret").json() == {"platform": "vapi", "configured": False}
    assert send(configured, "vapi", fixture("vapi-end-of-call-report.json")).status_code == 404
    assert configured.put("/api/v1/webhooks/zoom/secret", json={"secret": SECRET}).status_code in (400, 422)


def test_observe_takes_a_platforms_native_transcript(api: Api) -> None:
    messages = fixture("vapi-end-of-call-report.json")["message"]["artifact"]["messages"]
    r = api.post("/observability/v1/observe/", json={"agent": api.agent(), "call_id": "v1", "transcript_type": "vapi",
                                                     "transcript_json": messages})
    assert r.status_code == 201, r.text
    assert [t["role"] for t in r.json()["transcript_json"]][:2] == ["agent", "user"]
    bad = api.post("/observability/v1/observe/", json={"agent": api.agent("b"), "call_id": "v2", "transcript_type": "retell",
                                                       "transcript_json": {"not": "a list"}})
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "transcript_json"
