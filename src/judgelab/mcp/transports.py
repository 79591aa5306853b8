"""Where the MCP tools' API calls go: mounted in the server at /mcp, or a stdio process.

Mounted, each tool call is answered by the very app that serves /mcp, in-process (ASGI), with the
API key the MCP request carried: an agent can do exactly what its key can do over HTTP.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import httpx2
from fastapi import FastAPI
from mcp.server.mcpserver import Context
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from judgelab.api.deps import key_from_headers, resolve_key
from judgelab.client import AsyncClient
from judgelab.mcp.tools import build_server

INTERNAL_URL = "http://judgelab.internal"


class McpEndpoint:
    """ASGI app for /mcp: refuses a request without a valid key (401), then hands it to the SDK's
    stateless streamable-HTTP transport, so any worker process can answer any request."""

    def __init__(self, api: FastAPI) -> None:
        self.api = api
        self._clients: dict[str, AsyncClient] = {}
        self.session_manager: StreamableHTTPSessionManager | None = None

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Serve /mcp for the app's lifetime (a session manager runs once, so each lifespan gets its own)."""
        server = build_server(self._client_for)
        # The key check below is what protects /mcp; DNS-rebinding protection would also refuse
        # every deployment reached under a name other than localhost.
        server.streamable_http_app(stateless_http=True, json_response=True,
                                   transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False))
        self.session_manager = server.session_manager
        try:
            async with self.session_manager.run():
                yield
        finally:
            self.session_manager = None
            for client in self._clients.values():
                await client.aclose()
            self._clients.clear()

    async def _client_for(self, ctx: Context) -> AsyncClient:
        key = key_from_headers(ctx.headers)
        if not key:
            raise PermissionError("no API key on this MCP request")
        client = self._clients.get(key)
        if client is None:
            if len(self._clients) > 256:
                self._clients.clear()
            client = AsyncClient(INTERNAL_URL, key, transport=httpx2.ASGITransport(app=self.api))
            self._clients[key] = client
        return client

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = key_from_headers(Request(scope).headers)
        if not key or await resolve_key(self.api.state, key) is None:
            response = JSONResponse({"detail": "missing or invalid API key: send 'Authorization: Bearer <key>'"},
                                    status_code=401, headers={"WWW-Authenticate": "Bearer"})
            await response(scope, receive, send)
            return
        if self.session_manager is None:
            await JSONResponse({"detail": "the MCP endpoint is not running"}, status_code=503)(scope, receive, send)
            return
        await self.session_manager.handle_request(scope, receive, send)


def run_stdio(client: AsyncClient) -> None:
    """Serve the tools on stdin/stdout until the client hangs up."""

    async def client_for(_ctx: Context) -> AsyncClient:
        return client

    server = build_server(client_for)

    async def main() -> None:
        try:
            await server.run_stdio_async()
        finally:
            await client.aclose()

    anyio.run(main)
