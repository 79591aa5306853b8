"""The whole loop in a real browser (Debian's Chromium, driven by Playwright), as a reviewer does it:
log in, open a call, disagree with a reason, review the queue by keyboard up to 6, start labs,
watch it finish, read the diff, apply, validate the new version. Screenshots of each main page
go to artifacts/screenshots/ (or $JUDGELAB_SCREENSHOTS)."""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from judgelab.client import Client
from judgelab.testing.fake_openai import FakeOpenAIServer
from tests.client.conftest import Live
from tests.labs import rewriter
from tests.labs.test_labs_run import STRICT, model

playwright = pytest.importorskip("playwright.sync_api", reason="playwright is in the dev extra")
expect = playwright.expect
CHROMIUM = os.environ.get("JUDGELAB_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync"]
SHOTS = Path(os.environ.get("JUDGELAB_SCREENSHOTS", Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"))


def judge(body: dict[str, Any]) -> str:
    """The labs tests' judge (literal about its criterion), hedging on paraphrases it fails."""
    answer = json.loads(model(body))
    if not rewriter.is_rewriter(body):
        text = body["messages"][-1]["content"]
        if "go ahead" in text.rsplit("</T", 1)[0].rsplit(">", 1)[-1]:
            answer["explanation"] = "It seems the customer said go ahead, which may be a yes."
        else:
            answer["explanation"] = "The customer said yes." if answer["result"] else "No confirmation was asked for."
    return json.dumps(answer)


@pytest.fixture
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        if os.environ.get("JUDGELAB_REQUIRE_BROWSER"):
            pytest.fail(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def _seed(live: Live) -> dict[str, Any]:
    with Client(live.url, live.key) as jl:
        agent = jl.create_agent("airline-bot")["id"]
        calls: dict[str, list[int]] = {"yes": [], "paraphrase": [], "none": []}
        for i in range(6):
            calls["yes"].append(jl.observe({"agent": agent, "call_id": f"y{i}", "transcript_json": [
                {"role": "agent", "content": f"Shall I book flight ref-y{i}? <script>alert('y{i}')</script><b>bold</b>",
                 "start_time": 0, "end_time": 2},
                {"role": "user", "content": "Customer: yes", "start_time": 3, "end_time": 4}]})["id"])
            calls["paraphrase"].append(jl.observe({"agent": agent, "call_id": f"p{i}", "transcript_json": [
                {"role": "agent", "content": f"Shall I book flight ref-p{i}?", "start_time": 0, "end_time": 2},
                {"role": "user", "content": "Sure, go ahead", "start_time": 3, "end_time": 4}]})["id"])
            calls["none"].append(jl.observe({"agent": agent, "call_id": f"n{i}", "transcript_json": [
                {"role": "agent", "content": f"I booked flight ref-n{i} for you.", "start_time": 0, "end_time": 2}]})["id"])
        # One more paraphrase nobody will label: validation reports it as changed (unlabelled).
        calls["paraphrase"].append(jl.observe({"agent": agent, "call_id": "p6", "transcript_json": [
            {"role": "agent", "content": "Shall I book flight ref-p6?", "start_time": 0, "end_time": 2},
            {"role": "user", "content": "Sure, go ahead", "start_time": 3, "end_time": 4}]})["id"])
        metric = jl.create_metric({"name": "confirms before booking", "description": STRICT,
                                   "eval_type": "binary_workflow_adherence"})["id"]
        everything = [c for group in calls.values() for c in group]
        assert jl.wait_job(jl.evaluate([metric], everything)["job_id"], timeout=60, interval=0.05)["status"] == "completed"
    return {"metric": metric, "calls": calls}


def test_the_loop_in_a_browser(live_server: Live, fake_model: FakeOpenAIServer, browser: Any) -> None:
    fake_model.rule = judge
    seeded = _seed(live_server)
    metric, calls = seeded["metric"], seeded["calls"]
    shutil.rmtree(SHOTS, ignore_errors=True)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1366, "height": 900})
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    url = live_server.url

    def shot(name: str) -> None:
        page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)

    # Log in: a page behind the login sends us there and back.
    page.goto(f"{url}/metrics")
    assert "/login" in page.url
    page.fill("#api_key", "jl_wrong")
    page.click("button[type=submit]")
    assert "unknown or revoked" in page.inner_text("main")
    shot("login")
    page.fill("#api_key", live_server.key)
    page.click("button[type=submit]")
    page.wait_for_url(f"{url}/metrics")

    # Calls list with search, then a call: the transcript is text, never markup.
    page.goto(f"{url}/calls")
    page.fill("#search", "ref-y1")
    page.press("#search", "Enter")
    page.wait_for_url("**/calls?search=ref-y1*")
    assert "1 matching" in page.inner_text("h1")
    shot("calls")
    page.goto(f"{url}/calls/{calls['yes'][1]}")
    assert "<script>alert('y1')</script><b>bold</b>" in page.inner_text(".transcript")
    assert page.locator(".transcript script, .transcript b").count() == 0 and dialogs == []

    # Disagree with a result on a call page, with a reason (htmx swaps the card in place).
    first = calls["paraphrase"][0]
    page.goto(f"{url}/calls/{first}")
    card = page.locator(f"#result-{metric}")
    assert "fail" in card.inner_text()
    card.locator("input[value=disagree]").check()
    card.locator("select[name=expected_value]").select_option("true")
    card.locator("textarea[name=feedback]").fill("At 00:03 the customer said 'go ahead': a paraphrased yes counts.")
    card.locator("button[type=submit]").click()
    page.wait_for_selector("text=Feedback saved.")
    shot("call")

    # The review queue: hedged verdicts first, one at a time, by keyboard, counting toward 6.
    page.goto(f"{url}/review?metric={metric}")
    assert "1 of 6" in page.inner_text("#counter")
    assert page.is_disabled("#start-labs")
    shot("review")
    for n in range(2, 7):
        assert "go ahead" in page.inner_text(".transcript")
        page.keyboard.press("d")
        page.locator("#expected_value").select_option("true")
        page.fill("#feedback", "At 00:03 'go ahead' is a paraphrased yes, which counts as confirmation.")
        page.click("#submit-vote")
        # No eval: the page's CSP forbids it. At the 6th the counter says ready, never "7 of 6".
        expect(page.locator("#counter")).to_have_text(re.compile(f"^{n} of 6" if n < 6 else "^6 feedback items$"))
    assert page.is_enabled("#start-labs")

    # A colleague's agreements on the other calls arrive through the API meanwhile.
    with Client(url, live_server.key) as jl:
        for c in calls["yes"] + calls["none"]:
            jl.mark_metric_vote(c, metric, "agree", feedback="Right: the verdict matches what was said.", reviewer="colleague")

    # Start labs and watch it finish (htmx polls the status, then reloads the page).
    page.click("#start-labs")
    page.wait_for_url("**/labs/*")
    shot("labs-running")
    page.wait_for_selector("#verdict", timeout=90_000)
    verdict = page.inner_text("#verdict")
    progress_id = page.url.rsplit("/", 1)[1]
    with Client(url, live_server.key) as jl:
        shown = jl.labs_progress(progress_id)["verdict"]
    # No random-audit labels here: at best "promising, unverified" (5+ held-out fixes, exact p <= 0.05).
    assert verdict == ("promising, unverified" if shown["fixed"] >= 5 and shown["broken"] == 0 else "not significant")
    assert verdict == shown["verdict"] and "Next:" in page.inner_text("#next-step")
    assert "paraphrased confirmation" in page.inner_text(".diff")
    assert "held out" in page.inner_text("main") or "held-out" in page.inner_text("main")
    shot("labs")

    # Apply: the metric has a new version; nothing was applied before this click.
    assert Client(url, live_server.key).get_metric(metric)["version"] == 1
    page.click("#apply")
    page.wait_for_url(f"{url}/metrics/{metric}")
    assert "version 2" in page.inner_text("h1")
    assert "paraphrased confirmation" in page.inner_text(".diff")
    shot("metric")

    # Validate the new version: the paraphrase calls are fixed.
    page.click("text=Validate this version")
    page.wait_for_url("**/validations/*")
    validation_url = page.url
    page.wait_for_selector("text=calls checked", timeout=90_000)
    report = page.inner_text("main")
    assert "6 fixed" in report and "0 regressed" in report and "1 changed (unlabelled)" in report, report
    # The unlabelled flip, marked right, becomes feedback on that call.
    page.click("button:has-text('New verdict right')")
    page.wait_for_selector("text=marked right")
    with Client(url, live_server.key) as jl:
        assert jl.get_feedback(metric)["progress"]["total"] == 19
    shot("validation")

    page.goto(f"{url}/metrics")
    assert "confirms before booking" in page.inner_text("table")
    shot("metrics")
    # A new metric from the form: a syntax error is shown beside its field, nothing typed is lost.
    page.click("#new-metric")
    page.fill("#name", "asks for a refund")
    page.select_option("#type", "custom_code")
    page.fill("#custom_code", "_result = (")
    page.click("#save-metric")
    expect(page.locator("[data-field=custom_code]")).to_be_visible()
    assert page.input_value("#custom_code") == "_result = ("
    page.fill("#custom_code", "_result = 'refund' in data['transcript']\n_explanation = 'looked for refund'")
    page.fill("#dry_run_call", str(calls["yes"][0]))  # try it on one call first: judged, nothing saved
    page.click("#dry-run")
    expect(page.locator("#dry-run-result")).to_contain_text("looked for refund")
    assert page.input_value("#name") == "asks for a refund"
    page.click("#save-metric")
    page.wait_for_url("**/metrics/*")
    page.click("#edit-metric")
    shot("metric-edit")
    page.goto(f"{url}/evaluate")
    page.check(f"input[name=metric][value='{metric}']")
    page.click("button[value=estimate]")
    page.wait_for_selector("#estimate")
    assert "19 calls" in page.inner_text("#estimate")
    shot("evaluate")
    page.click("#start-evaluation")
    page.wait_for_url("**/jobs/*")
    expect(page.locator("#job-status")).to_have_text("completed", timeout=60_000)
    shot("job")
    job_url = page.url

    # Version 2's own results on the labelled calls now give it an agreement figure, with n and base rate,
    # on the 7 of 19 labels it was not built from (the labs ledger leaves out the 12 it learned on).
    page.goto(f"{url}/metrics/{metric}")
    row = page.locator("table[aria-label='agreement per version'] tr", has_text="v2").inner_text()
    assert "1.00" in row and "n=7" in row and "12 labels it was built from left out" in row, row
    assert page.locator("svg[aria-label^='kappa per version'] circle").count() == 2
    shot("metric")

    # Convert to code: the run measures the saving with its interval; nothing is created until asked.
    page.click("#to-code")
    page.wait_for_url("**/conversions/*")
    conversion_url = page.url
    expect(page.locator("#conversion-status")).to_have_text("completed", timeout=60_000)
    assert "input tokens per call" in page.inner_text("#saving") and "95% interval" in page.inner_text("#saving")
    shot("conversion")
    page.click("#create-code-metric")
    page.wait_for_url("**/metrics/*")
    assert "(code)" in page.inner_text("h1")

    # The calls list filtered by the metric's verdict; ticked calls go to the estimate, and only they.
    page.goto(f"{url}/calls")
    page.select_option("#metric", str(metric))
    page.select_option("#verdict", "pass")
    page.select_option("#sort", "likely_wrong")
    page.click("button:has-text('Filter')")
    page.wait_for_url("**verdict=pass**")
    boxes = page.locator("input[name=call]")
    assert boxes.count() >= 2
    boxes.nth(0).check()
    boxes.nth(1).check()
    shot("calls-filtered")
    page.click("#evaluate-selected")
    page.wait_for_url("**/evaluate?**")
    assert "2 selected call(s)" in page.inner_text("#picked-calls")

    # At 420 px (a phone): the top bar wraps, and no page scrolls sideways (wide tables scroll in their box).
    page.set_viewport_size({"width": 420, "height": 900})
    for name, path in (("calls", "/calls"), ("review", f"/review?metric={metric}"), ("metrics", "/metrics"),
                       ("metric", f"/metrics/{metric}"), ("metric-new", "/metrics/new"), ("evaluate", "/evaluate"),
                       ("jobs", "/jobs"), ("import", "/import"), ("labs", f"/labs/{progress_id}"),
                       ("validation", validation_url.removeprefix(url)), ("job", job_url.removeprefix(url)),
                       ("conversion", conversion_url.removeprefix(url)), ("call", f"/calls/{calls['paraphrase'][0]}")):
        page.goto(f"{url}{path}")
        shot(f"{name}-420")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 420, (path, width)
    page.set_viewport_size({"width": 1366, "height": 900})

    # Logging out ends the session: the cookie no longer opens pages.
    page.click("text=Log out")
    page.wait_for_url("**/login")
    page.goto(f"{url}/calls")
    assert "/login" in page.url
    assert dialogs == []
