"""Prompts as versioned artifacts: a registry of named prompts in the store, with
immutable versions (content hashes), labels (``production``, ``candidate``, ...),
``{{variables}}`` checked on render and the model settings each version expects.

    from workbench import prompts

    v = prompts.push(gw.store, "rag.answer", messages, labels=["candidate"])
    run = evals.evaluate(golden, target=evals.rag_target(gw, prompt="rag.answer@candidate"))
    prompts.promote(gw.store, "rag.answer", run, {"checks": 1.0})  # the eval gate

The RAG answer prompt, the judge instructions and the probe judge are registry entries
with built-in defaults (:mod:`workbench.prompts.builtin`). Moving ``production`` is
audited and counts as a deployment (:func:`deployments`). CLI: ``workbench prompts``.
"""

from __future__ import annotations

from workbench.prompts.builtin import (
    JUDGE_FAITHFULNESS,
    JUDGE_RELEVANCY,
    PROBE_JUDGE,
    RAG_ANSWER,
    builtins,
)
from workbench.prompts.registry import (
    PRODUCTION,
    GateBlocked,
    PromptTable,
    deployments,
    diff,
    get,
    list_prompts,
    production,
    promote,
    push,
    resolve,
    rollback,
    set_label,
    versions,
)
from workbench.prompts.template import PromptError, PromptVersion

__all__ = ["JUDGE_FAITHFULNESS", "JUDGE_RELEVANCY", "PROBE_JUDGE", "PRODUCTION", "RAG_ANSWER",
           "GateBlocked", "PromptError", "PromptTable", "PromptVersion", "builtins",
           "deployments", "diff", "get", "list_prompts", "production", "promote", "push",
           "resolve", "rollback", "set_label", "versions"]
