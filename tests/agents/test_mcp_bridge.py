"""The MCP bridge against a real MCP server process (tests/agents/mcp_server.py) over stdio
and over loopback HTTP, driven by the agent loop through the Gateway (the model is the
priced mock upstream, scripted to call tools). Needs the ``agents`` extra (``mcp``)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.priced_upstream import PricedUpstream
from workbench.agents import Agent
from workbench.models import audit as audit_log
from workbench.models.gateway import Gateway
from workbench.models.tools import set_allowlist

if os.environ.get("WORKBENCH_REQUIRE_MCP") != "1":
    pytest.importorskip("mcp", reason="the agents extra (mcp) is not installed")

from workbench.agents.mcp_bridge import MCPTools  # noqa: E402

SERVER = Path(__file__).with_name("mcp_server.py")


@pytest.fixture
def log(tmp_path: Path) -> Path:
    return tmp_path / "mcp.log"


@pytest.fixture
def server(log: Path) -> Iterator[MCPTools]:
    env = {"MCP_TEST_LOG": str(log), "PATH": os.environ.get("PATH", "")}
    with MCPTools([sys.executable, str(SERVER)], env=env) as bridge:
        yield bridge


def ran(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


def test_agent_calls_an_mcp_tool_over_stdio(server: MCPTools, gw: Gateway,
                                            upstream: PricedUpstream, log: Path) -> None:
    tools = {t.name: t for t in server.tools()}
    assert set(tools) == {"add", "wipe_disk", "fail"}
    assert tools["wipe_disk"].dangerous and not tools["add"].dangerous  # destructiveHint
    assert tools["add"].parameters["required"] == ["a", "b"]
    upstream.tool_calls = [("add", {"a": 2, "b": 3})]
    run = Agent(gw, tools=server.tools()).run("Add 2 and 3.")
    assert run.stopped == "answer" and run.tool_calls[0].status == "ok"
    assert run.tool_calls[0].result == "5" and ran(log) == ["add 2 3"]
    offered = [t["function"]["name"] for t in upstream.bodies[0]["tools"]]
    assert sorted(offered) == ["add", "fail", "wipe_disk"]


def test_mcp_tools_obey_allowlists_and_approval(server: MCPTools, gw: Gateway,
                                                upstream: PricedUpstream, log: Path) -> None:
    upstream.tool_calls = [("wipe_disk", {"confirm": True})]
    # No approver: the destructive tool is refused, and audited.
    run = Agent(gw, tools=server.tools()).run("Free some space.")
    assert run.tool_calls[0].status == "denied" and ran(log) == []
    # A key allowed only `add`: wipe_disk is not offered and its call is withheld.
    key_id, key = gw.policy.create_key(team="mcp")
    set_allowlist(gw.store, "key", key_id, "add")
    run = Agent(gw.as_key(key), tools=server.tools(), approve=lambda c: True).run("Free space.")
    assert [t["function"]["name"] for t in upstream.bodies[-1]["tools"]] == ["add"]
    assert run.tool_calls == [] and ran(log) == []
    actions = [r["action"] for r in audit_log.entries(gw.store, 20)]
    assert actions.count("tool.blocked") == 2


def test_a_failing_mcp_tool_is_an_observation_not_a_crash(
        server: MCPTools, gw: Gateway, upstream: PricedUpstream) -> None:
    upstream.tool_calls = [("fail", {})]
    run = Agent(gw, tools=server.tools()).run("Try it.")
    assert run.stopped == "answer" and run.tool_calls[0].status == "error"
    assert "fail" in (run.tool_calls[0].result or "")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_mcp_server_over_loopback_http(log: Path, tmp_path: Path) -> None:
    port = _free_port()
    env = {**os.environ, "MCP_TEST_LOG": str(log)}
    proc = subprocess.Popen([sys.executable, str(SERVER), "http", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert proc.poll() is None, "the MCP server exited"
                assert time.monotonic() < deadline, "the MCP server did not start"
                time.sleep(0.2)
        with MCPTools(f"http://127.0.0.1:{port}/mcp") as bridge:
            assert {t.name for t in bridge.tools()} == {"add", "wipe_disk", "fail"}
            assert bridge.call("add", {"a": 40, "b": 2}) == "42"
        assert ran(log) == ["add 40 2"]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
