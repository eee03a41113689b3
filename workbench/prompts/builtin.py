"""The workbench's own prompts as registry entries: the RAG answer prompt, the judge
instructions and the probe judge. They are the defaults; a team overrides one by pushing
a version under the same name and labelling it ``production``.

The texts live here, at the bottom of the layers, so the code that uses them
(``workbench.retrieval.rag``, ``evals.judge_metrics``, ``evals.probe_checks``) imports
them down instead of the registry importing up.
"""

from __future__ import annotations

from functools import cache

from workbench.prompts.template import PromptVersion

RAG_ANSWER = "rag.answer"
JUDGE_FAITHFULNESS = "judge.faithfulness"
JUDGE_RELEVANCY = "judge.answer_relevancy"
PROBE_JUDGE = "probe.judge"

# The RAG answer prompt (free answer strategy).
SYSTEM_PROMPT = (
    "Answer the question using only the numbered sources. Cite the sources you use like "
    "[1]. If the sources do not contain the answer, say \"I don't know\". Be brief.")
# Its user turn.
USER_TEMPLATE = "Sources:\n\n{{sources}}\n\nQuestion: {{question}}"
# The judge metrics' instructions (evals.judge_metrics); MAX_STATEMENTS caps the
# faithfulness split.
MAX_STATEMENTS = 12
FAITHFULNESS_INSTRUCTION = (
    "You check an ANSWER against the CONTEXT it was written from. Split the answer into "
    f"short standalone statements (at most {MAX_STATEMENTS}), copying its words. For each "
    "statement set \"supported\" to true only if the context states it or it follows "
    "directly from the context; otherwise false. Reply with JSON only.")
RELEVANCY_INSTRUCTION = (
    "Write the one question that the ANSWER below responds to. Set \"noncommittal\" to true "
    "if the answer is evasive, vague or says it does not know; otherwise false. Reply with "
    "JSON only.")
# The judge of probes with expect.judge (evals.probe_checks).
JUDGE_TEMPLATE = ("You grade an assistant's answer. Reply in JSON with pass (true/false) and a "
                  "short reason.\nCriteria: {{criteria}}\nQuestion: {{question}}\n"
                  "Answer: {{answer}}")


@cache
def builtins() -> dict[str, PromptVersion]:
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


__all__ = ["FAITHFULNESS_INSTRUCTION", "JUDGE_FAITHFULNESS", "JUDGE_RELEVANCY", "JUDGE_TEMPLATE",
           "MAX_STATEMENTS", "PROBE_JUDGE", "RAG_ANSWER", "RELEVANCY_INSTRUCTION",
           "SYSTEM_PROMPT", "USER_TEMPLATE", "builtins"]
