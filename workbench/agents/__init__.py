"""Agents and tools under governance: plain Python tools (``@tool``), a small agent loop
over the Gateway (step and cost budgets, a stop rule, human approval for dangerous tools),
and a bridge to MCP servers (:mod:`workbench.agents.mcp_bridge`, needs the ``agents``
extra)."""

from workbench.agents.loop import Agent, AgentRun, Step, ToolCall, ask_human
from workbench.agents.tools import Tool, tool

__all__ = ["Agent", "AgentRun", "Step", "Tool", "ToolCall", "ask_human", "tool"]
