"""`judgelab keys create | list | revoke`."""

from __future__ import annotations

from typing import Annotated

import typer

from judgelab.cli.common import console, friendly_errors, session_scope
from judgelab.projects.service import create_api_key, get_or_create_project, key_to_dict, list_keys, revoke_key

app = typer.Typer(help="API keys (each belongs to one project; admin keys may create projects).", no_args_is_help=True)


@app.command("create")
@friendly_errors
def create(
    project: Annotated[str, typer.Option(help="Project name; created if it does not exist")],
    name: Annotated[str, typer.Option(help="A label for the key, e.g. who uses it")] = "",
    admin: Annotated[bool, typer.Option("--admin", help="An admin key: may create projects and revoke any key")] = False,
) -> None:
    """Create an API key. The key is printed alone on the last line (only its hash is stored)."""
    with session_scope() as session:
        proj, created = get_or_create_project(session, project)
        new = create_api_key(session, proj, name=name, admin=admin)
        key = new.key
    kind = "admin API key" if admin else "API key"
    console.print(f"{'Created project' if created else 'Project'} {proj.name!r} (id {proj.id}); new {kind}:", highlight=False)
    print(key)


@app.command("list")
@friendly_errors
def list_() -> None:
    """Every key of every project (never the keys themselves: only their prefixes)."""
    with session_scope() as session:
        rows = [key_to_dict(k) for k in list_keys(session, 0, admin=True)]
    for r in rows:
        state = f"revoked {r['revoked_at']}" if r["revoked_at"] else "live"
        console.print(f"{r['id']:>4}  project {r['project']:<4} {r['prefix']}…  {'admin ' if r['admin'] else ''}{state}"
                      f"  {r['name']}", highlight=False, soft_wrap=True)


@app.command("revoke")
@friendly_errors
def revoke(key_id: Annotated[int, typer.Argument(help="The key's id (from `judgelab keys list`)")]) -> None:
    """Revoke a key: servers stop accepting it within a second."""
    with session_scope() as session:
        row = revoke_key(session, 0, key_id, admin=True)
        out = key_to_dict(row)
    console.print(f"revoked key {out['id']} ({out['prefix']}…) of project {out['project']}", highlight=False)
