"""`judgelab keys create`."""

from __future__ import annotations

from typing import Annotated

import typer

from judgelab.cli.common import console, friendly_errors, session_scope
from judgelab.projects.service import create_api_key, get_or_create_project

app = typer.Typer(help="API keys (each belongs to one project).", no_args_is_help=True)


@app.command("create")
@friendly_errors
def create(
    project: Annotated[str, typer.Option(help="Project name; created if it does not exist")],
    name: Annotated[str, typer.Option(help="A label for the key, e.g. who uses it")] = "",
) -> None:
    """Create an API key. The key is printed alone on the last line (only its hash is stored)."""
    with session_scope() as session:
        proj, created = get_or_create_project(session, project)
        new = create_api_key(session, proj, name=name)
        key = new.key
    console.print(f"{'Created project' if created else 'Project'} {proj.name!r} (id {proj.id}); new API key:", highlight=False)
    print(key)
