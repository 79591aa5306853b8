"""`judgelab review`: likely-misaligned results one at a time in the terminal, votes, and labs.

It talks to the HTTP API through `judgelab.client`: a remote server with `--url`, or this machine's
database in-process (then labs runs in this process too).
"""

from __future__ import annotations

import getpass
import json
import os
import time
from typing import Annotated, Any

import typer
from rich.panel import Panel
from rich.progress import BarColumn, Progress, TextColumn
from rich.prompt import Confirm, Prompt
from rich.text import Text

from judgelab.calls.transcripts import format_clock
from judgelab.cli.common import console, find_project, friendly_errors
from judgelab.client import Client
from judgelab.labs.excerpt import excerpt

BINARY = ("binary_qualitative", "binary_workflow_adherence")


def _show(value: Any) -> str:
    if value is None:
        return "N/A"
    if isinstance(value, bool):
        return "PASS" if value else "FAIL"
    return json.dumps(value)


def _clock(seconds: Any) -> str:
    return format_clock(seconds) if isinstance(seconds, int | float) else "--:--"


def _excerpt_text(call: dict[str, Any], criterion: str, explanation: str) -> Text:
    turns = call.get("transcript_json") or []
    picked = excerpt(turns, criterion, explanation)
    text = Text()
    last = -1
    for i in picked:
        if last >= 0 and i != last + 1:
            text.append("   ...\n", style="dim")
        turn = turns[i]
        # Transcripts are data: shown verbatim, never interpreted as Rich markup.
        text.append(f"[{_clock(turn.get('start_time'))}] {turn.get('role', '?')}: ", style="bold")
        text.append(f"{turn.get('content') or ''}\n")
        last = i
    return text


def _ask_expected(metric: dict[str, Any]) -> Any:
    eval_type = metric["eval_type"]
    if eval_type in BINARY:
        answer = Prompt.ask("Expected value", choices=["pass", "fail", "na", "skip"], default="skip")
        return {"pass": True, "fail": False, "na": "N/A", "skip": None}[answer]
    if eval_type == "enum":
        values = list(metric.get("enum_values") or [])
        answer = Prompt.ask("Expected value", choices=[*values, "na", "skip"], default="skip")
        return None if answer == "skip" else ("N/A" if answer == "na" else answer)
    answer = Prompt.ask("Expected value (a number, na, or skip)", default="skip")
    return None if answer == "skip" else ("N/A" if answer == "na" else answer)


def _counter(progress: dict[str, Any]) -> str:
    total, needed = progress["total"], progress["required_for_labs"]
    if total >= needed:
        return f"{total} feedback items (labs needs {needed}: ready)"
    return f"{total} of {needed} feedback items toward labs"


@friendly_errors
def review(
    metric_id: Annotated[int, typer.Option("--metric", "-m", help="Metric id")],
    url: Annotated[str | None, typer.Option(help="A judgelab server (default: JUDGELAB_URL; without it, the local database)")] = None,
    api_key: Annotated[str | None, typer.Option(help="API key for --url (default: JUDGELAB_API_KEY)")] = None,
    project: Annotated[str | None, typer.Option(help="Project name, for the local database (optional when there is only one)")] = None,
    reviewer: Annotated[str | None, typer.Option(help="Your name on the votes (default: the key's name, or your user name)")] = None,
    limit: Annotated[int, typer.Option(min=1, max=200, help="At most this many results")] = 50,
    audit: Annotated[int | None, typer.Option(min=1, max=500, help="Instead: label this many calls drawn at random, "
                                              "blind (the labels labs' `improved` rests on)")] = None,
) -> None:
    """Review a metric's likely-misaligned results; at 6 feedback items, start labs and follow it.
    With --audit N, label N randomly drawn calls blind instead."""
    url = url or os.environ.get("JUDGELAB_URL")
    runtime = None
    if url:
        client: Client = Client(url, api_key)
    else:
        from judgelab.cli.common import database
        from judgelab.client.local import LocalClient
        from judgelab.config import get_settings

        db, settings = database(), get_settings()
        with db.session() as session:
            project_id = find_project(session, project, metric_id).id
        client = LocalClient(db, settings, project_id, reviewer or getpass.getuser() or "cli")
    try:
        with client:
            if audit:
                _audit(client, metric_id, audit, reviewer)
            else:
                runtime = _review(client, metric_id, reviewer, limit, local=not url)
    finally:
        if runtime is not None:
            runtime.stop()


def _review(client: Client, metric_id: int, reviewer: str | None, limit: int, *, local: bool) -> Any:
    metric = client.get_metric(metric_id)
    progress = client.get_feedback(metric_id, page_size=1)["progress"]
    queue = client.review_queue(metric_id, limit=limit)["results"]
    console.print(f"[bold]{metric['name']}[/bold] (version {metric['version']}): {len(queue)} likely-misaligned "
                  f"results to review; {_counter(progress)}.", highlight=False)
    if not queue:
        console.print("Nothing to review: no result of this metric looks misaligned (are its results all N/A, or not "
                      f"evaluated yet?). Next: `judgelab eval --metric {metric_id}`, or label random calls with "
                      f"`judgelab review --metric {metric_id} --audit 20`.", highlight=False)
    offered = bool(progress["ready_for_labs"])  # offer labs the moment the 6th usable label arrives
    for n, item in enumerate(queue, 1):
        call = client.get_call(item["call_log_id"])
        body = Text()
        body.append(f"Call {call['id']} ({call['call_id']}) was scored ", style="")
        body.append(_show(item["value"]), style="bold")
        body.append(".\nThe explanation says: ")
        body.append(item["explanation"] or "(none)")
        body.append("\nWhy it is here: " + "; ".join(item["signals"]) + "\n\nThe transcript shows:\n", style="")
        body.append_text(_excerpt_text(call, metric["description"], item["explanation"] or ""))
        console.print(Panel(body, title=f"{n} of {len(queue)}", expand=False))
        choice = Prompt.ask("Do you agree?", choices=["a", "d", "s", "q"], default="s",
                            show_choices=True).lower()
        if choice == "q":
            break
        if choice == "s":
            continue
        vote = "agree" if choice == "a" else "disagree"
        expected = None
        reason = ""
        if vote == "disagree":
            reason = Prompt.ask("Why? Cite the moment (e.g. 'at 02:15 the customer ...')")
            expected = _ask_expected(metric)
        out = client.mark_metric_vote(call["id"], metric_id, vote, feedback=reason, expected_value=expected, reviewer=reviewer,
                                     source="review_queue")
        for warning in out.get("warnings") or []:
            console.print(f"  [yellow]note[/yellow]: {warning}", highlight=False)
        progress = client.get_feedback(metric_id, page_size=1)["progress"]
        console.print(f"  saved: {_counter(progress)}", highlight=False)
        if progress["ready_for_labs"] and not offered:
            offered = True
            if Confirm.ask(f"{_counter(progress)}: start labs now (no: keep reviewing)?", default=True):
                return _start_labs(client, metric_id, local)
    if not progress["ready_for_labs"]:
        console.print(f"{progress['remaining_for_labs']} more feedback items are needed before labs can run.")
        return None
    if not Confirm.ask(f"{_counter(progress)}: start labs now?", default=True):
        return None
    return _start_labs(client, metric_id, local)


def _start_labs(client: Client, metric_id: int, local: bool) -> Any:
    runtime = _local_runtime() if local else None
    run = client.start_labs(metric_id)
    _follow(client, run["progress_id"])
    return runtime


def _audit(client: Client, metric_id: int, size: int, reviewer: str | None) -> None:
    """Blind review of a random sample: the person says the right value first; the judge's verdict
    is shown after the vote, which is recorded as source random_audit."""
    metric = client.get_metric(metric_id)
    sample = client.audit_sample(metric_id, size)
    console.print(f"[bold]{metric['name']}[/bold]: {sample['size']} calls drawn at random from {sample['population']} "
                  f"unlabelled results (seed {sample['seed']}, audit sample {sample['id']}). The judge's verdict is "
                  "shown only after your answer.", highlight=False)
    for n, entry in enumerate(sample["calls"], 1):
        call = client.get_call(entry["call_log_id"])
        body = Text(f"Call {call['id']} ({call['call_id']}). The criterion:\n{metric['description']}\n\n"
                    "The transcript shows:\n")
        body.append_text(_excerpt_text(call, metric["description"], ""))
        console.print(Panel(body, title=f"audit {n} of {sample['size']}", expand=False))
        expected = _ask_expected(metric)
        if expected is None:
            continue
        result: dict[str, Any] = next((r for r in call["evaluation"]["metrics"] if r["metric_id"] == metric_id), {})
        judged = result.get("value")
        right = expected == ("N/A" if judged is None else judged)
        reason = "" if right else Prompt.ask("Why? Cite the moment", default="")
        out = client.mark_metric_vote(call["id"], metric_id, "agree" if right else "disagree", feedback=reason,
                                      expected_value=expected, reviewer=reviewer, source="random_audit",
                                      audit_sample_id=sample["id"])
        console.print(f"  the judge said {_show(judged)}: {'agreed' if right else 'disagreed'}, saved "
                      f"(feedback {out.get('id')})", highlight=False)
    left = client.audit_sample_status(sample["id"])
    console.print(f"{left['labelled']} of {left['size']} audit calls labelled; run labs again to use them.")


def _local_runtime() -> Any:
    import socket

    from judgelab.cli.common import database
    from judgelab.config import get_settings
    from judgelab.jobs.runtime import Runtime

    return Runtime(database(), get_settings(), executor_id=f"cli-review-{socket.gethostname()}").start()


def _follow(client: Client, progress_id: str) -> None:
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed:.0f}/{task.total:.0f} judge calls"),
                  console=console, transient=True) as bar:
        task = bar.add_task("labs: queued", total=100)
        while True:
            state = client.labs_progress(progress_id)
            p = state.get("progress") or {}
            bar.update(task, description=f"labs: {state['stage']}", completed=p.get("judge_calls", 0),
                       total=p.get("judge_budget") or 100)
            if state["status"] == "needs_input":
                bar.stop()
                question = state["question"] or {}
                console.print(Panel(Text(question.get("text", "")), title="the run needs your answer"))
                for i in question.get("items", []):
                    console.print(f"  call {i.get('call_log_id')}: {_show(i['label'])} from {i['reviewer']}: {i['reason']}",
                                  highlight=False, markup=False)
                answer = Prompt.ask("The right value (pass, fail, na, a value) or skip", default="skip")
                if answer == "skip":
                    client.answer_labs(progress_id, skip=True)
                else:
                    client.answer_labs(progress_id, {"pass": True, "fail": False, "na": "N/A"}.get(answer, answer))
                bar.start()
            elif state["status"] in ("completed", "failed"):
                break
            time.sleep(0.5)
    if state["status"] == "failed":
        console.print(f"[red]labs failed[/red]: {state.get('message')}", highlight=False)
        raise typer.Exit(1)
    _print_result(state)


def _print_result(state: dict[str, Any]) -> None:
    verdict = state.get("verdict") or {}
    for line in (state.get("diff") or "(no change proposed)").splitlines():
        style = "green" if line.startswith("+") and not line.startswith("+++") else (
            "red" if line.startswith("-") and not line.startswith("---") else "")
        console.print(Text(line, style=style))
    held = (state.get("scores") or {}).get("held_out")
    if held:
        b, p = held["baseline"], held["proposal"]

        def kappa(s: dict[str, Any]) -> str:
            k = s.get("kappa") or {}
            return "-" if k.get("value") is None else f"{k['value']:.2f} [{k['low']:.2f}, {k['high']:.2f}]"

        base = b.get("base_rate") or {}
        rate = "" if base.get("value") is None else f", base rate {100 * base['value']:.0f}% pass"
        def failed(s: dict[str, Any]) -> str:
            return f" ({s['errors']} failed to evaluate, counted wrong)" if s.get("errors") else ""

        console.print(f"held out (n={b['num_total']}{rate}): baseline {b['num_correct']}/{b['num_total']} right"
                      f"{failed(b)}, kappa {kappa(b)}; proposal {p['num_correct']}/{p['num_total']} right{failed(p)}, "
                      f"kappa {kappa(p)} (95% intervals)", highlight=False)
    if state.get("validation"):
        console.print(f"measured by {state['validation']}", highlight=False)
    console.print(f"verdict: [bold]{verdict.get('verdict')}[/bold] — {verdict.get('explanation', '')}", highlight=False)
    if verdict.get("evidence"):
        console.print(f"evidence: {verdict['evidence']}", highlight=False)
    if verdict.get("next_step"):
        console.print(f"next: {verdict['next_step']['text']}", highlight=False)
    for note in state.get("notes") or []:
        console.print(f"note: {note}", highlight=False, markup=False)
    p = state.get("progress") or {}
    cost = p.get("cost_usd")
    spent = f"${cost:.4f}" if cost else "cost unknown or none (no price for the model)"
    console.print(f"{p.get('judge_calls', 0)} judge calls, {p.get('rewriter_calls', 0)} rewriter calls, "
                  f"{spent}. Nothing was applied: apply it with "
                  f"POST /api/v1/labs/{state['progress_id']}/apply/ or in the web UI (/labs/{state['progress_id']}).",
                  highlight=False)
