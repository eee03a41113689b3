"""A governed bridge to MCP servers: their tools become agent tools.

The agent loop then offers and runs them exactly like Python tools: only the ones the
key's tool allowlist permits are offered, each run is a TOOL span and a ``tool_events``
row, refusals are audited, and tools you mark ``dangerous`` wait for the approval hook
(MCP's own ``destructiveHint`` annotation marks them too)::

    from workbench.agents import Agent
    from workbench.agents.mcp_bridge import MCPTools

    with MCPTools(["python", "my_server.py"]) as server:       # stdio, or "http://127.0.0.1:8000/mcp"
        run = Agent(gw, tools=server.tools()).run("Add 2 and 3")

Needs the ``agents`` extra (``pip install 'genai-workbench[agents]'``: the ``mcp`` SDK,
version 2). The MCP client is async; this class runs it on a private event loop thread so
notebooks and the (sync) agent loop can call tools directly. Servers run on this machine
(a subprocess over stdio) or on loopback HTTP; nothing here reaches the internet.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
from collections.abc import Coroutine, Sequence
from concurrent.futures import Future
from types import TracebackType
from typing import Any, TypeVar

from workbench.agents.tools import Tool
from workbench.errors import ConfigError, UpstreamError, WorkbenchError

T = TypeVar("T")
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


class MCPToolError(WorkbenchError):
    """An MCP tool reported an error (its text is the model's observation)."""

    code = "mcp_tool_error"


def _field(obj: Any, snake: str, camel: str) -> Any:
    """A field of an MCP type: snake_case in mcp 2, camelCase in the wire format."""
    value = getattr(obj, snake, None)
    return getattr(obj, camel, None) if value is None else value


def _require_mcp() -> Any:
    try:
        import mcp
    except ImportError:
        raise ConfigError("the MCP bridge needs the `mcp` package: pip install "
                          "'genai-workbench[agents]'") from None
    if not hasattr(mcp, "Client"):
        raise ConfigError("the MCP bridge needs mcp>=2 (found an older SDK): pip install "
                          "'genai-workbench[agents]'")
    return mcp


class MCPTools:
    """The tools of one MCP server (see the module docs). ``server``: a command (list of
    arguments, run over stdio) or an ``http://`` URL (streamable HTTP). ``dangerous``:
    tool names that need approval; ``prefix`` is put before every tool name (two servers
    with a tool of the same name)."""

    def __init__(self, server: Sequence[str] | str, *, env: dict[str, str] | None = None,
                 dangerous: Sequence[str] = (), prefix: str = "", timeout_s: float = 30.0):
        if isinstance(server, str) and not server.startswith(("http://", "https://")):
            raise ConfigError("server must be a command (a list: ['python', 'server.py']) "
                              "or an http:// URL")
        self.server = server
        self.env = env
        self.dangerous = set(dangerous)
        self.prefix = prefix
        self.timeout_s = timeout_s
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._client: Any = None
        self._tools: list[Tool] = []

    # -- lifecycle -------------------------------------------------------------------------
    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        assert self._loop is not None, "use MCPTools as a context manager (or call open())"
        fut: Future[T] = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return fut.result(timeout=self.timeout_s)
        except TimeoutError:
            fut.cancel()
            raise UpstreamError(f"MCP server did not answer within {self.timeout_s:.0f} s",
                                code="mcp_timeout") from None

    def open(self) -> MCPTools:
        mcp = _require_mcp()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True,
                                        name="workbench-mcp")
        self._thread.start()
        if isinstance(self.server, str):
            target: Any = self.server
        else:
            command, *args = list(self.server)
            target = mcp.StdioServerParameters(command=command, args=args, env=self.env)
        self._client = mcp.Client(target, read_timeout_seconds=self.timeout_s)
        try:
            self._run(self._client.__aenter__())
            listed = self._run(self._client.list_tools())
        except WorkbenchError:
            self.close()
            raise
        except (OSError, RuntimeError, ValueError, mcp.MCPError) as exc:
            self.close()
            raise ConfigError(f"could not start or reach the MCP server ({type(exc).__name__}: "
                              f"{str(exc)[:200]})") from None
        self._tools = [self._wrap(t) for t in listed.tools]
        return self

    def close(self) -> None:
        if self._loop is None:
            return
        if self._client is not None:
            # The server may be gone already: nothing left to close politely.
            with contextlib.suppress(UpstreamError, RuntimeError, OSError):
                self._run(self._client.__aexit__(None, None, None))
            self._client = None
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._loop.close()
        self._loop = None

    def __enter__(self) -> MCPTools:
        return self.open()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # -- tools -----------------------------------------------------------------------------
    def tools(self) -> list[Tool]:
        """The server's tools as agent tools (listed when the bridge opened)."""
        return list(self._tools)

    def _wrap(self, listed: Any) -> Tool:
        remote = str(listed.name)
        name = (self.prefix + _UNSAFE.sub("_", remote))[:64]
        annotations = getattr(listed, "annotations", None)
        destructive = bool(annotations and _field(annotations, "destructive_hint",
                                                  "destructiveHint"))
        schema = dict(_field(listed, "input_schema", "inputSchema")
                      or {"type": "object", "properties": {}})

        def call(**arguments: Any) -> str:
            return self.call(remote, arguments)

        return Tool(fn=call, name=name, description=str(listed.description or "")[:1000],
                    parameters=schema, dangerous=remote in self.dangerous or destructive,
                    meta={"mcp_tool": remote})

    def call(self, name: str, arguments: dict[str, Any]) -> str:
        """Call one tool of the server; its text content joined (errors raise)."""
        result = self._run(self._client.call_tool(name, arguments))
        texts = [str(getattr(block, "text", "")) for block in result.content or []
                 if getattr(block, "type", None) == "text"]
        text = "\n".join(texts)
        structured = _field(result, "structured_content", "structuredContent")
        if not texts and structured is not None:
            import json

            text = json.dumps(structured)
        if _field(result, "is_error", "isError"):
            raise MCPToolError(f"tool {name} failed: {text[:500]}")
        return text

    def __repr__(self) -> str:
        where = self.server if isinstance(self.server, str) else " ".join(self.server)
        return f"MCPTools({where!r}, tools={[t.name for t in self._tools]})"


__all__ = ["MCPToolError", "MCPTools"]
