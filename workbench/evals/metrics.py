"""The metric registry: what each metric needs, what it calls, how ragas builds it.

LLM-judged (ragas collections, through the Gateway): ``faithfulness``,
``answer_relevancy`` (strictness 1 by default: ragas' 3 asks the same prompt three
times), ``context_precision`` (with reference; one call per context), ``context_recall``,
``factual_correctness``. Embedding-based: ``semantic_similarity``. Lexical, no model:
``exact_match``, ``string_similarity`` (Levenshtein), ``bleu``, ``rouge`` (ROUGE-L F1),
computed like ragas' versions but without importing ragas (:mod:`workbench.evals.lexical`).
Judged with the workbench's own prompts, no ragas (:mod:`workbench.evals.judge_metrics`):
``wb_faithfulness``, ``wb_answer_relevancy``.

The seam: a metric is anything with ``async ascore(**inputs)`` returning an object with
``value`` (and optionally ``reason``); a :class:`MetricSpec` says which inputs it reads and
builds it from a :class:`JudgeKit`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from workbench.errors import BadRequest
from workbench.evals import lexical

Field = Literal["question", "answer", "contexts", "reference"]
Calls = Literal["llm", "llm+embeddings", "embeddings", "none"]

DEFAULT_METRICS = ("faithfulness", "answer_relevancy", "context_precision", "context_recall")


@dataclass
class JudgeKit:
    """What a metric builder may use: the judge's OpenAI client on the Gateway's proxy and
    its settings, and ragas' LLM and embeddings wrappers built on first use (so a run of
    metrics that do not need ragas never imports it)."""

    client: Any
    model: str
    embed_model: str
    max_tokens: int
    temperature: float
    max_attempts: int
    _ragas: tuple[Any, Any] | None = field(default=None, repr=False)
    # Registry prompt name -> the text in force (workbench.prompts): a team's override of
    # a judge instruction; missing names use the built-in text.
    instructions: dict[str, str] = field(default_factory=dict)

    def _ragas_pair(self) -> tuple[Any, Any]:
        if self._ragas is None:
            import instructor
            from ragas.embeddings.openai_provider import OpenAIEmbeddings
            from ragas.llms import llm_factory

            llm = llm_factory(self.model, client=self.client, max_tokens=self.max_tokens,
                              temperature=self.temperature,
                              max_retries=max(self.max_attempts - 1, 0))  # retries, not attempts
            # llm_factory patches OpenAI clients with Mode.JSON (json_object, no schema): a
            # small model then rambles. JSON_SCHEMA sends the schema, which the embedded
            # runtime turns into a grammar.
            llm.client = instructor.from_openai(  # type: ignore[attr-defined]
                self.client, mode=instructor.Mode.JSON_SCHEMA)
            self._ragas = (llm, OpenAIEmbeddings(client=self.client, model=self.embed_model))
        return self._ragas

    @property
    def llm(self) -> Any:
        """ragas' instructor LLM on the judge client."""
        return self._ragas_pair()[0]

    @property
    def embeddings(self) -> Any:
        """ragas' embeddings on the judge client."""
        return self._ragas_pair()[1]

    def call_options(self) -> dict[str, Any]:
        return {"client": self.client, "model": self.model, "max_tokens": self.max_tokens,
                "temperature": self.temperature, "max_attempts": self.max_attempts}


def _own(kind: str) -> Callable[[Any, Mapping[str, Any]], Any]:
    def build(kit: JudgeKit, opts: Mapping[str, Any]) -> Any:
        from workbench.evals import judge_metrics as jm

        if kind == "faithfulness":
            return jm.Faithfulness(**kit.call_options(),
                                   instruction=kit.instructions.get("judge.faithfulness", ""))
        return jm.AnswerRelevancy(**kit.call_options(), embed_model=kit.embed_model,
                                  instruction=kit.instructions.get("judge.answer_relevancy", ""))

    return build


@dataclass(frozen=True)
class MetricSpec:
    name: str
    calls: Calls
    needs: tuple[Field, ...]
    description: str
    # (JudgeKit or None for "none" metrics, options) -> an object with async ascore()
    build: Callable[[Any, Mapping[str, Any]], Any] = field(repr=False)
    # ragas ascore() argument name for each field it reads
    args: Mapping[str, str] = field(default_factory=dict)
    defaults: Mapping[str, Any] = field(default_factory=dict)

    @property
    def uses_model(self) -> bool:
        return self.calls != "none"

    def inputs(self, row: Mapping[str, Any]) -> dict[str, Any]:
        return {arg: row[f] for f, arg in self.args.items()}


def _c() -> Any:
    import os

    os.environ.setdefault("RAGAS_DO_NOT_TRACK", "true")  # before ragas' first import
    from ragas.metrics import collections

    return collections


_QA = {"question": "user_input", "answer": "response"}
_QAC = {**_QA, "contexts": "retrieved_contexts"}
_QRC = {"question": "user_input", "reference": "reference", "contexts": "retrieved_contexts"}
_RA = {"reference": "reference", "answer": "response"}

REGISTRY: dict[str, MetricSpec] = {m.name: m for m in (
    MetricSpec("faithfulness", "llm", ("question", "answer", "contexts"),
               "Share of the answer's statements supported by the contexts (2 calls).",
               lambda k, o: _c().Faithfulness(llm=k.llm), _QAC),
    MetricSpec("answer_relevancy", "llm+embeddings", ("question", "answer"),
               "Cosine of the question and questions generated from the answer "
               "(`strictness` calls + embeddings).",
               lambda k, o: _c().AnswerRelevancy(llm=k.llm, embeddings=k.embeddings,
                                                        strictness=int(o["strictness"])),
               _QA, {"strictness": 1}),
    MetricSpec("context_precision", "llm", ("question", "reference", "contexts"),
               "Ranked precision of contexts useful for the reference (1 call per context).",
               lambda k, o: _c().ContextPrecisionWithReference(llm=k.llm), _QRC),
    MetricSpec("context_recall", "llm", ("question", "reference", "contexts"),
               "Share of reference statements attributable to the contexts (1 call).",
               lambda k, o: _c().ContextRecall(llm=k.llm), _QRC),
    MetricSpec("factual_correctness", "llm", ("answer", "reference"),
               "Claim-level precision/recall/F1 of answer vs reference "
               "(2 calls for precision, 4 for f1).",
               lambda k, o: _c().FactualCorrectness(llm=k.llm, mode=o["mode"]),
               {"answer": "response", "reference": "reference"}, {"mode": "f1"}),
    MetricSpec("semantic_similarity", "embeddings", ("answer", "reference"),
               "Cosine of answer and reference embeddings.",
               lambda k, o: _c().SemanticSimilarity(embeddings=k.embeddings), _RA),
    MetricSpec("exact_match", "none", ("answer", "reference"),
               "1 if the answer equals the reference exactly.",
               lambda k, o: lexical.ExactMatch(), _RA),
    MetricSpec("string_similarity", "none", ("answer", "reference"),
               "1 - normalised Levenshtein distance of answer and reference.",
               lambda k, o: lexical.StringSimilarity(), _RA),
    MetricSpec("bleu", "none", ("answer", "reference"), "Sentence BLEU (sacrebleu), 0-1.",
               lambda k, o: lexical.Bleu(), _RA),
    MetricSpec("rouge", "none", ("answer", "reference"), "ROUGE-L F1 of answer vs reference.",
               lambda k, o: lexical.Rouge(), _RA),
    MetricSpec("wb_faithfulness", "llm", ("question", "answer", "contexts"),
               "faithfulness with the workbench's own prompt, no ragas (1 call).",
               _own("faithfulness"), _QAC),
    MetricSpec("wb_answer_relevancy", "llm+embeddings", ("question", "answer"),
               "answer_relevancy (strictness 1) with the workbench's own prompt, no ragas "
               "(1 call + embeddings).", _own("answer_relevancy"), _QA),
)}


def resolve(names: str | Sequence[str] | None) -> list[MetricSpec]:
    """Metric specs by name (comma-separated strings accepted); unknown names raise."""
    if names is None:
        names = list(DEFAULT_METRICS)
    if isinstance(names, str):
        names = [names]
    flat = [n.strip() for part in names for n in part.split(",") if n.strip()]
    unknown = [n for n in flat if n not in REGISTRY]
    if unknown:
        raise BadRequest(f"unknown metric(s) {unknown}; choose from {', '.join(REGISTRY)}")
    return [REGISTRY[n] for n in dict.fromkeys(flat)]


_CONFIG_ATTRS = ("strictness", "mode", "beta", "atomicity", "coverage", "distance_measure",
                 "rouge_type", "kwargs")


def ragas_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ragas")
    except PackageNotFoundError:
        return "not installed"


def prompt_version(metric: Any) -> str:
    """A short hash of everything that decides what the metric asks the judge: its class,
    settings, ragas' version and every prompt's instruction, examples and output schema.
    A ragas upgrade that rewords a prompt changes it (and so misses the cache). Metrics of
    our own say their version themselves."""
    own = getattr(metric, "prompt_version", None)
    if callable(own):
        return str(own())
    from ragas.prompt.metrics.base_prompt import BasePrompt

    parts: dict[str, Any] = {"class": type(metric).__qualname__, "ragas": ragas_version()}
    for attr in _CONFIG_ATTRS:
        if hasattr(metric, attr):
            parts[attr] = repr(getattr(metric, attr))
    for attr, value in sorted(vars(metric).items()):
        if isinstance(value, BasePrompt):
            parts[attr] = {
                "instruction": value.instruction, "language": value.language,
                "examples": [[i.model_dump(mode="json"), o.model_dump(mode="json")]
                             for i, o in value.examples],
                "schema": value.output_model.model_json_schema(),
            }
    blob = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


__all__ = ["DEFAULT_METRICS", "REGISTRY", "JudgeKit", "MetricSpec", "prompt_version", "ragas_version",
           "resolve"]
