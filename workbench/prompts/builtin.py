"""The workbench's own prompts as registry entries: the RAG answer prompt, the judge
instructions and the probe judge. They are the defaults; a team overrides one by pushing
a version under the same name and labelling it ``production``.

The texts stay where their code lives (``workbench.retrieval.rag``, ``evals.judge_metrics``,
``evals.probe_checks``); this module only names them, imported on first use.
"""

from __future__ import annotations

from functools import cache

from workbench.prompts.template import PromptVersion

RAG_ANSWER = "rag.answer"
JUDGE_FAITHFULNESS = "judge.faithfulness"
JUDGE_RELEVANCY = "judge.answer_relevancy"
PROBE_JUDGE = "probe.judge"


@cache
def builtins() -> dict[str, PromptVersion]:
    from workbench.evals.judge_metrics import FAITHFULNESS_INSTRUCTION, RELEVANCY_INSTRUCTION
    from workbench.evals.probe_checks import JUDGE_TEMPLATE
    from workbench.retrieval.rag import SYSTEM_PROMPT, USER_TEMPLATE

    entries = [
        PromptVersion.build(RAG_ANSWER, [{"role": "system", "content": SYSTEM_PROMPT},
                                         {"role": "user", "content": USER_TEMPLATE}],
                            description="The RAG answer prompt (free answer strategy): "
                                        "numbered sources, then the question.",
                            source="builtin"),
        PromptVersion.build(JUDGE_FAITHFULNESS, FAITHFULNESS_INSTRUCTION,
                            description="Faithfulness judge instruction (wb_faithfulness).",
                            source="builtin"),
        PromptVersion.build(JUDGE_RELEVANCY, RELEVANCY_INSTRUCTION,
                            description="Answer-relevancy judge instruction "
                                        "(wb_answer_relevancy).", source="builtin"),
        PromptVersion.build(PROBE_JUDGE, JUDGE_TEMPLATE,
                            description="The judge of probes with expect.judge.",
                            source="builtin"),
    ]
    return {p.name: p for p in entries}


__all__ = ["JUDGE_FAITHFULNESS", "JUDGE_RELEVANCY", "PROBE_JUDGE", "RAG_ANSWER", "builtins"]
