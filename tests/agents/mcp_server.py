"""A small real MCP server for the bridge tests: ``python mcp_server.py`` (stdio) or
``python mcp_server.py http PORT`` (streamable HTTP on loopback). Each tool run is
appended to the file named by $MCP_TEST_LOG, so a test can tell what really ran."""

from __future__ import annotations

import os
import sys

from mcp.server.mcpserver import MCPServer
from mcp.types import ToolAnnotations

server = MCPServer("workbench-test")


def _log(line: str) -> None:
    path = os.environ.get("MCP_TEST_LOG")
    if path:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")


@server.tool()
def add(a: int, b: int) -> str:
    """Add two integers."""
    _log(f"add {a} {b}")
    return str(a + b)


@server.tool(annotations=ToolAnnotations(destructiveHint=True))
def wipe_disk(confirm: bool) -> str:
    """Erase every file."""
    _log("wipe_disk")
    return "wiped"


@server.tool()
def fail() -> str:
    """Always fails."""
    raise ValueError("the tool broke")


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "http":
        server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[2]))
    else:
        server.run()
