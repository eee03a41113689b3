"""Agents as eval targets: ``evaluate("agent-tasks", agent_target(gw))`` runs the agent on
every golden task; the agent checks (``workbench.evals.agent_checks``) read what it did."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from workbench.agents.loop import Agent
from workbench.agents.tools import Tool

if TYPE_CHECKING:
    from workbench.evals.targets import Target
    from workbench.models.gateway import Gateway


def agent_target(gateway: Gateway | Agent, *, tools: Sequence[Tool] | None = None,
                 model: str | None = None, max_steps: int = 3, **agent_options: Any
                 ) -> Target:
    """A :class:`~workbench.evals.targets.Target` that runs an agent per question: an
    ``Agent`` as given, or a new one over ``gateway`` with ``tools`` (default: the demo
    tools). Its config (model, tools, budgets) is recorded in the run."""
    from workbench.evals.targets import Target

    if isinstance(gateway, Agent):
        agent = gateway
    else:
        from workbench.agents.demo_tools import demo_tools

        agent = Agent(gateway, tools=list(tools) if tools is not None else demo_tools(),
                      model=model, max_steps=max_steps, **agent_options)
    config = {"kind": "agent", "model": agent.model or agent.gateway.settings.default_chat_model,
              "tools": sorted(agent.tools), "max_steps": agent.max_steps,
              "max_cost_usd": agent.max_cost_usd, "tool_choice": agent.tool_choice}
    return Target(fn=agent.run, config=config)


__all__ = ["agent_target"]
