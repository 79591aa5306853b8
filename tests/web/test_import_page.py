"""Importing a file in the browser: the formats `judgelab import` reads, all or nothing, bad lines named."""

from __future__ import annotations

import gzip
import json

from tests.conftest import Api
from tests.web.test_pages import _login


def _upload(api: Api, csrf: str, name: str, content: bytes, fmt: str = "auto", agent: str = "bot") -> str:
    r = api.client.post("/import", data={"csrf_token": csrf, "format": fmt, "agent": agent},
                        files={"file": (name, content, "application/octet-stream")})
    return f"{r.status_code}\n{r.text}"


def test_import_jsonl_text_and_gzip_with_bad_lines_named(api: Api) -> None:
    csrf = _login(api.client, api.key)
    assert "Import calls" in api.client.get("/import").text
    good = "\n".join(json.dumps({"call_id": f"j{i}", "transcript": f"User: hello {i}", "transcript_type": "text"})
                     for i in range(3)).encode()
    out = _upload(api, csrf, "calls.jsonl", good)
    assert out.startswith("200") and "Imported 3 calls from calls.jsonl (jsonl): 3 new, 0 updated" in out
    out = _upload(api, csrf, "calls.jsonl", good)
    assert "0 new, 3 updated" in out  # the same file again updates the same calls
    text = b"Agent: Hi, how can I help?\nUser: My card was charged twice\n---\nAgent: Bye\n"
    out = _upload(api, csrf, "calls.txt.gz", gzip.compress(text))
    assert "Imported 2 calls from calls.txt.gz (text)" in out
    bad = good + b"\n{not json}\n" + json.dumps({"call_id": "x", "transcript_type": "zoom", "transcript": "User: x"}).encode()
    out = _upload(api, csrf, "bad.jsonl", bad)
    assert out.startswith("400") and "Nothing was imported from bad.jsonl" in out
    assert "<td>4</td>" in out and "<td>5</td>" in out and "<code>transcript_type</code>" in out
    assert api.get("/observability/v1/call-logs-external/").json()["count"] == 5  # nothing of bad.jsonl
    assert _upload(api, csrf, "calls.jsonl", good, agent="").startswith("400")
