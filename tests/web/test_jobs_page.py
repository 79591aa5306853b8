"""The jobs page lists evaluations and labs, validation and conversion runs, with metric names, and
links a job's failures to the calls and their messages."""

from __future__ import annotations

from judgelab.db import Database
from judgelab.db.models import JobItem, Metric
from judgelab.jobs.service import create_evaluation_job
from judgelab.labs.service import queue_run
from tests.conftest import Api
from tests.web.test_pages import _login


def test_jobs_and_runs_with_metrics_and_failures(api: Api, db: Database) -> None:
    _login(api.client, api.key)
    agent = api.agent()
    call = api.call(agent, "c1", "hello")["id"]
    metric = api.metric("greets politely")["id"]
    with db.session() as s:
        job = create_evaluation_job(s, api.project_id, [call], [metric], force=False, default_model="openai/x")
        s.add(JobItem(job_id=job.id, call_log_id=call, metric_id=metric, outcome="error", error="the model call failed: 503"))
        m = s.get(Metric, metric)
        assert m is not None
        run = queue_run(s, api.project_id, m, params={"kind": "validation"}, progress={"judge_calls": 3})
        job_id, run_id = job.id, run.id
    page = api.client.get("/jobs").text
    assert "greets politely" in page and "validation" in page and "evaluation" in page
    assert f'href="/validations/{run_id}"' in page and f'href="/jobs/{job_id}"' in page
    assert f'href="/calls/{call}" title="the model call failed: 503"' in page and "1 error<" in page
    detail = api.client.get(f"/jobs/{job_id}").text
    assert "Failed evaluations" in detail and "the model call failed: 503" in detail and f'href="/calls/{call}"' in detail
