"""Team overrides of the workbench's own prompts: probe prompts from the registry and the
judge instructions in force."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from workbench import prompts
from workbench.errors import BadRequest
from workbench.evals import probes


def test_a_probe_names_a_registry_prompt(any_store: Any) -> None:
    v = prompts.push(any_store, "support.triage", [
        {"role": "system", "content": "Classify the ticket."},
        {"role": "user", "content": "Ticket: {{input}}"}], labels=["candidate"])
    probe = probes.Probe(name="triage", input="printer on fire", prompt="support.triage@candidate",
                         expect={"pattern": "."})
    rendered, ref = probes.with_prompt(probe, any_store)
    assert ref == v.ref
    assert rendered.system == "Classify the ticket." and rendered.input == "Ticket: printer on fire"
    assert rendered.prompt_hash != probe.prompt_hash  # the drift report sees the change
    prompts.push(any_store, "support.chat", [
        {"role": "system", "content": "a"}, {"role": "assistant", "content": "b"},
        {"role": "user", "content": "c"}], labels=["candidate"])
    with pytest.raises(BadRequest, match="one system and one user message"):
        probes.with_prompt(probe.model_copy(update={"prompt": "support.chat@candidate"}),
                           any_store)


def test_judges_use_the_production_instruction(make_gateway: Callable[..., Any]) -> None:
    from workbench.evals.judge import Judge
    from workbench.evals.judge_metrics import FAITHFULNESS_INSTRUCTION

    gw = make_gateway()
    judge = Judge(gw)
    try:
        assert judge._instructions()[prompts.JUDGE_FAITHFULNESS] == FAITHFULNESS_INSTRUCTION
        mine = prompts.push(gw.store, prompts.JUDGE_FAITHFULNESS, "Be strict. " +
                            FAITHFULNESS_INSTRUCTION)
        prompts.set_label(gw.store, prompts.JUDGE_FAITHFULNESS, "production", mine.version)
        assert judge._instructions()[prompts.JUDGE_FAITHFULNESS].startswith("Be strict.")
    finally:
        judge.close()
