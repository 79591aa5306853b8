"""judgelab's MCP server: the metric lab as tools for AI agents, over stdio and streamable HTTP."""

from judgelab.mcp.tools import build_server

__all__ = ["build_server"]
