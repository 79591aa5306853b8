"""The web UI: server-rendered pages (Jinja2) made live with htmx, served by `judgelab serve` at /."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from judgelab.web import auth, calls, conversions, imports, jobs, labs, metric_form, metrics, review
from judgelab.web.common import HERE


def install(app: FastAPI) -> None:
    # metric_form first: /metrics/new must not be read as a metric id.
    for module in (auth, calls, imports, metric_form, metrics, review, labs, conversions, jobs):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
