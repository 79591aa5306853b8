"""`judgelab mcp`: the MCP tools on stdin/stdout, for agent clients that launch a command."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from judgelab.cli.common import err_console


def mcp(
    url: Annotated[str | None, typer.Option(help="A running judgelab server (default: JUDGELAB_URL; "
                                            "without either, this process opens the configured database itself)")] = None,
    api_key: Annotated[str | None, typer.Option(help="API key (default: JUDGELAB_API_KEY)")] = None,
) -> None:
    """Serve judgelab's MCP tools over stdio. Every tool goes through the HTTP API with this key."""
    import httpx2

    from judgelab.client import AsyncClient
    from judgelab.mcp.transports import INTERNAL_URL, run_stdio

    key = api_key or os.environ.get("JUDGELAB_API_KEY")
    if not key:
        err_console.print("error: api_key: set JUDGELAB_API_KEY or pass --api-key "
                          "(create one with `judgelab keys create --project NAME`)")
        raise typer.Exit(2)
    url = url or os.environ.get("JUDGELAB_URL")
    if url:
        run_stdio(AsyncClient(url, key))
        return
    # No server named: answer from the local database in-process. Jobs this starts are queued
    # there and run by `judgelab serve` or `judgelab worker`; stdout stays the protocol's alone.
    from judgelab.api.app import create_app
    from judgelab.config import get_settings
    from judgelab.db import open_database

    settings = get_settings()
    app = create_app(settings, open_database(settings))
    run_stdio(AsyncClient(INTERNAL_URL, key, transport=httpx2.ASGITransport(app=app)))
