"""`judgelab serve`: the API and the job workers in one process."""

from __future__ import annotations

from typing import Annotated

import typer
import uvicorn

from judgelab.cli.common import console
from judgelab.config import get_settings
from judgelab.db import open_database
from judgelab.projects.service import count_keys, create_api_key, get_or_create_project


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on")] = 8000,
) -> None:
    """Run the server on the configured database (SQLite in JUDGELAB_DATA_DIR unless JUDGELAB_DATABASE_URL is set)."""
    from judgelab.api.app import create_app

    settings = get_settings()
    db = open_database(settings)
    with db.session() as session:
        if count_keys(session) == 0:
            # A first start should be usable at once: make a project and a key, shown this one time.
            project, _ = get_or_create_project(session, "default")
            new = create_api_key(session, project, name="first key", admin=True)
            console.print(
                f"No API keys yet: created project [bold]{project.name}[/bold] and this admin key "
                "(shown once, only its hash is stored):"
            )
            console.print(f"  [bold green]{new.key}[/bold green]")
    where = "PostgreSQL" if db.dialect == "postgresql" else f"SQLite at {settings.resolved_database_url[10:]}"
    from judgelab.evaluation.sandbox import status as sandbox_status

    console.print(f"judge model: {settings.model or 'none set (JUDGELAB_MODEL): evaluations will be refused until one is'}",
                  highlight=False)
    console.print(sandbox_status(), highlight=False)
    console.print(f"judgelab on http://{host}:{port}  (web UI at /, API docs at /docs, MCP at /mcp; database: {where}; "
                  "jobs run here too)")
    uvicorn.run(create_app(settings, db, run_jobs=True), host=host, port=port, log_level="info")
