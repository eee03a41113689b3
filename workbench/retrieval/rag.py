"""``ask()``: retrieve, build a grounded prompt with numbered sources, answer through the
Gateway (policy, guardrails, ledger), return the answer, its sources and the trace id.

One trace id covers the whole request: the query embedding and the chat call are both
recorded in the ledger under it. When nothing retrieved is similar enough to the
question, the model is not called at all and the answer says so.

How the answer is made depends on the strategy (extractive, constrained, free; see
:mod:`workbench.retrieval.answer_strategies`): small models select evidence sentences,
large ones write freely; all answers pass the same citation verifier. The free prompt is
sized for the embedded SmolLM2-135M (2k context, ~300 prompt tokens/s on two cores):
three sources of ~600 characters each.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from workbench.config import ModelSpec
from workbench.models.gateway import Gateway, new_trace_id
from workbench.models.types import ChatResult
from workbench.retrieval.collections import DEFAULT_COLLECTION
from workbench.retrieval.search import Hit, Mode, Reranker, Searcher

if TYPE_CHECKING:
    from workbench.prompts import PromptVersion

IDK = "I don't know: the collection has nothing relevant to this question."
# MiniLM cosine below which a chunk is treated as off-topic. benchmarks/retrieval_bench.py
# (stdlib docs, 48 labelled questions): the best hit of an on-topic question scored 0.37
# at the lowest (median 0.59); of off-topic questions 0.22 at the highest (median 0.19).
MIN_SIMILARITY = 0.3


@dataclass
class Source:
    n: int
    source: str
    title: str
    heading: str
    score: float
    similarity: float | None
    snippet: str
    cited: bool = False

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class Answer:
    question: str
    answer: str
    sources: list[Source]
    trace_id: str
    model: str | None = None
    grounded: bool = True  # False: nothing relevant was found, the model was not asked
    usage: dict[str, int] = field(default_factory=dict)
    latency_ms: float = 0.0
    strategy: str = "free"  # the strategy asked for (answer_strategies)
    answered_by: str = ""  # the strategy whose answer this is, after any fallback
    check: str = ""  # the verifier's objection to the model's answer, if any
    draft: str = ""  # the model's own text before the verifier (free strategy)
    prompt: str | None = None  # the registry prompt version (name@version)
    history_turns: int = 0  # earlier turns of the conversation the model saw
    session_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {"question": self.question, "answer": self.answer,
               "sources": [s.to_dict() for s in self.sources], "trace_id": self.trace_id,
               "model": self.model, "grounded": self.grounded, "usage": self.usage,
               "latency_ms": self.latency_ms, "strategy": self.strategy,
               "answered_by": self.answered_by, "check": self.check, "prompt": self.prompt}
        if self.session_id is not None:
            out.update(session_id=self.session_id, history_turns=self.history_turns)
        return out

    def lines(self) -> list[str]:
        out = [self.answer.strip(), ""]
        for s in self.sources:
            mark = "*" if s.cited else " "  # cited by the answer
            where = f" - {s.heading}" if s.heading else ""
            out.append(f"{mark}[{s.n}] {s.source}{where} (score {s.score:.3f})")
        how = self.answered_by or self.strategy
        note = f" (verifier: {self.check})" if self.check else ""
        out.append(f"trace {self.trace_id} · answered by {how}{note}")
        return out

    def __str__(self) -> str:
        return self.answer

    def __repr__(self) -> str:
        return f"Answer({self.answer[:60]!r}, sources={len(self.sources)}, trace={self.trace_id})"

    def _repr_html_(self) -> str:
        items = "".join(f"<li>{html.escape(s.source)}"
                        f"{' - ' + html.escape(s.heading) if s.heading else ''}</li>"
                        for s in self.sources)
        return (f"<div><p style='white-space:pre-wrap'>{html.escape(self.answer)}</p>"
                f"<ol>{items}</ol><small style='color:#666'>trace {self.trace_id}</small></div>")


def _trim(text: str, chars: int) -> str:
    # Flattened: fewer tokens, and a tiny model copies Markdown/code layout it is shown.
    flat = " ".join(text.split())
    if len(flat) <= chars:
        return flat
    cut = flat[:chars]
    # End on a sentence or word boundary so the model does not see half a word.
    stop = cut.rfind(". ")
    return (cut[:stop + 1] if stop > chars // 2 else cut.rsplit(" ", 1)[0]) + " …"


def cut_repetition(text: str) -> str:
    """Cut a degenerate loop: tiny models at temperature 0 often repeat a sentence until
    max_tokens. Stops at the first line (3+ words, list markers ignored) seen before."""
    seen: set[str] = set()
    out = []
    for line in text.splitlines():
        key = " ".join(re.sub(r"^\W*(\d+[.)\]]|\[\d+\]|[-*])?\s*", "", line).lower().split())
        if len(key.split()) >= 3:
            if key in seen:
                break
            seen.add(key)
        out.append(line)
    return "\n".join(out).strip()


def build_prompt(question: str, hits: list[Hit], chars_per_source: int = 600,
                 prompt: PromptVersion | None = None,
                 history: Sequence[Mapping[str, str]] = ()) -> list[dict[str, str]]:
    """The grounded-answer prompt :func:`ask` sends: ``prompt`` (default: the built-in
    ``rag.answer``: answer from the numbered sources only, cite them as [n], say so when
    they do not cover the question) rendered with the sources (each cut to
    ``chars_per_source``) and the question; ``history`` (earlier turns of the
    conversation) goes between its system message and the new user turn. Use it to send
    the same prompt yourself."""
    from workbench.prompts import RAG_ANSWER, builtins

    blocks = []
    for i, h in enumerate(hits, 1):
        label = h.title + (f" - {h.heading}" if h.heading and h.heading != h.title else "")
        blocks.append(f"[{i}] {label}\n{_trim(h.text, chars_per_source)}")
    template = prompt or builtins()[RAG_ANSWER]
    values = {"sources": "\n\n".join(blocks), "question": question}
    # A team's version may leave out a variable (a prompt without sources, say).
    messages = template.render({k: v for k, v in values.items() if k in template.variables})
    if not history:
        return messages
    head = [m for m in messages[:1] if m["role"] == "system"]
    return head + [dict(m) for m in history] + messages[len(head):]


def ask(gw: Gateway, question: str, *, collection: str = DEFAULT_COLLECTION, k: int = 3,
        mode: Mode = "hybrid", model: str | None = None, max_tokens: int = 128,
        min_similarity: float = MIN_SIMILARITY, filters: Mapping[str, Any] | None = None,
        chars_per_source: int = 600, reranker: Reranker | None = None,
        mask_sources: bool | None = None, strategy: str | None = None,
        verify: bool = True, prompt: str | PromptVersion | None = None,
        history: Sequence[tuple[str, str]] = ()) -> Answer:
    """Answer ``question`` from ``collection`` with numbered, cited sources.

    ``strategy`` (``extractive``, ``constrained``, ``free``; default: the profile's
    ``answer_strategy``, ``auto`` = by model size) says how the answer is made, see
    :mod:`workbench.retrieval.answer_strategies`. Every answer is checked by the verifier
    (``verify=False`` turns it off, for baselines): fabricated citations are dropped and
    an answer that does not overlap its cited sources falls back to the extractive one.

    Traced as a ``rag.ask`` CHAIN span holding a ``rag.retrieve`` RETRIEVER span (the
    documents found, best first) and the Gateway's EMBEDDING and LLM spans; inside an
    active span (e.g. the service's ``service.ask``) the whole tree nests under it.
    Question, answer and document text are masked before they reach a span.
    ``prompt``: the registry prompt to answer with (a ``PromptVersion`` or a reference such
    as ``"rag.answer@candidate"``; default the ``production`` version of ``rag.answer``);
    its name and version are on every span of the answer. ``history``: earlier turns of the
    conversation, (question, answer) oldest first, trimmed to the model's context by
    :func:`workbench.sessions.fit_history` (free strategy only: the others quote sources).
    ``mask_sources`` (default: the ``mask_sources`` setting, on) masks the sources' snippet,
    title and heading in the returned answer.
    """
    import time

    from workbench.observability import tracing
    from workbench.retrieval import answer_strategies as strat

    started = time.perf_counter()
    mask = gw.guardrails.mask
    trace_id = tracing.current_trace_id() or new_trace_id()
    spec = gw.spec(model)
    # Answering needs the chat model whatever the strategy: an extractive answer is still
    # given in that model's name, so a key that may not use it may not ask.
    gw.policy.check_model(gw.principal, spec.name)
    chosen = strat.resolve(gw, spec, strategy)
    from workbench import prompts

    template = prompts.resolve(gw.store, prompt, prompts.RAG_ANSWER)
    searcher = Searcher(gw, collection)
    masked_question = mask(question).text
    with tracing.prompt_context(template.span_attributes()), tracing.span(
            "rag.ask", kind="CHAIN", input=masked_question, gateway=gw, trace_id=trace_id,
            attributes={"workbench.collection": collection, "workbench.search_mode": mode,
                        "workbench.k": k, "workbench.answer_strategy": chosen}) as root:
        with tracing.span("rag.retrieve", kind="RETRIEVER", input=masked_question,
                          gateway=gw) as retrieve:
            hits = searcher.search(question, k=k, mode=mode, filters=filters,
                                   reranker=reranker, trace_id=trace_id)
            retrieve.set_documents([{"id": h.id, "score": h.score,
                                     "content": mask(h.text).text,
                                     "metadata": {"source": h.source, "similarity": h.similarity}}
                                    for h in hits])
        relevant = [h for h in hits if h.similarity is None or h.similarity >= min_similarity]
        if not relevant:
            root.set_output(IDK)
            root.set_attributes({"workbench.grounded": False})
            return Answer(question, IDK, [], trace_id, grounded=False, strategy=chosen,
                          prompt=template.ref)
        made = _answer(gw, question, relevant, spec, chosen, trace_id=trace_id,
                       embed_model=searcher.meta.embed_model, max_tokens=max_tokens,
                       chars_per_source=chars_per_source, verify=verify,
                       template=template, history=history)
        cited = set(strat.citations(made.text))
        show = gw.settings.mask_sources if mask_sources is None else mask_sources
        sources = [Source(n=i, source=h.source, title=h.title, heading=h.heading,
                          score=h.score, similarity=h.similarity, snippet=h.snippet(),
                          cited=i in cited)
                   for i, h in enumerate([h.masked() for h in relevant] if show else relevant, 1)]
        # An extractive answer quotes the documents: it is a snippet too.
        text = mask(made.text).text if show else made.text
        root.set_output(mask(made.text).text)
        root.set_attributes({"workbench.grounded": True, "workbench.sources": len(sources),
                             "workbench.answered_by": made.answered_by,
                             "workbench.verifier": made.check or "ok",
                             "workbench.history_turns": made.history_turns})
    res = made.result
    return Answer(question, text, sources, res.trace_id if res else trace_id,
                  model=res.model if res else None,
                  usage=res.usage if res else {},
                  latency_ms=(time.perf_counter() - started) * 1000, strategy=chosen,
                  answered_by=made.answered_by, check=made.check, draft=made.draft,
                  prompt=template.ref, history_turns=made.history_turns)


@dataclass
class _Made:
    text: str
    answered_by: str  # the strategy whose answer was kept (after any fallback)
    check: str = ""  # why the verifier rejected or changed the model's answer
    result: ChatResult | None = None
    draft: str = ""
    history_turns: int = 0


def _answer(gw: Gateway, question: str, hits: list[Hit], spec: ModelSpec, chosen: str, *,
            trace_id: str, embed_model: str, max_tokens: int, chars_per_source: int,
            verify: bool, template: PromptVersion,
            history: Sequence[tuple[str, str]] = ()) -> _Made:
    from workbench.retrieval import answer_strategies as strat
    from workbench.retrieval import evidence

    params = strat.generation_params(spec, max_tokens)
    # The prompt's own settings (a version written for temperature 0.2, say) apply unless
    # the strategy set them; the model is the caller's choice.
    params = {**{k: v for k, v in template.model_settings.items() if k != "model"}, **params}
    if chosen == "free":
        messages = build_prompt(question, hits, chars_per_source, template)
        past: list[dict[str, str]] = []
        if history:
            from workbench.sessions.history import fit_history

            past = fit_history(history, messages, context_window=spec.context_window,
                               max_tokens=int(params.get("max_tokens") or max_tokens),
                               count=_token_counter(gw, spec))
            messages = build_prompt(question, hits, chars_per_source, template, past)
        res = gw.chat(messages, model=spec.name, trace_id=trace_id, **params)
        text = cut_repetition(res.text)
        turns = len(past) // 2
        if not verify:
            return _Made(text, "free", result=res, draft=text, history_turns=turns)
        verdict = strat.verify(text, [f"{h.heading}\n{h.text}" for h in hits])
        if verdict.ok:
            return _Made(verdict.text, "free",
                         f"dropped citations {verdict.dropped}" if verdict.dropped else "",
                         res, text, turns)
        fallback = _extractive(gw, question, hits, embed_model, trace_id)
        return _Made(fallback, "extractive", verdict.reason, res, text, turns)
    ranked = evidence.score(gw, question, evidence.gather(hits), embed_model=embed_model,
                            trace_id=trace_id)
    if chosen == "constrained" and ranked:
        candidates = ranked[:strat.CANDIDATES]
        messages, fmt = strat.constrained_messages(question, candidates)
        res = gw.chat(messages, model=spec.name, trace_id=trace_id, response_format=fmt,
                      **{**params, "max_tokens": 24})
        picked = strat.parse_choice(res.text, candidates)
        if picked:
            return _Made(strat.compose(picked), "constrained", result=res)
        return _Made(strat.compose(strat.choose(ranked)) or IDK, "extractive",
                     "the model chose no candidate sentence", res)
    return _Made(strat.compose(strat.choose(ranked)) or IDK, "extractive")


def _token_counter(gw: Gateway, spec: ModelSpec) -> Callable[[str], int]:
    """The provider's tokenizer when it has the model loaded, else the estimate."""
    from workbench.sessions.history import estimate_tokens

    exact = getattr(gw.provider(spec.provider), "count_prompt_tokens", None)

    def count(text: str) -> int:
        n = exact(spec, text) if callable(exact) else None
        return int(n) if n is not None else estimate_tokens(text)

    return count


def _extractive(gw: Gateway, question: str, hits: list[Hit], embed_model: str,
                trace_id: str) -> str:
    from workbench.retrieval import answer_strategies as strat
    from workbench.retrieval import evidence

    ranked = evidence.score(gw, question, evidence.gather(hits), embed_model=embed_model,
                            trace_id=trace_id)
    return strat.compose(strat.choose(ranked)) or IDK


__all__ = ["IDK", "MIN_SIMILARITY", "Answer", "Source", "ask", "build_prompt"]
