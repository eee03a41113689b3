"""Targets: the system under test, as ``question -> (answer, contexts)``.

Any callable works: it may return a string, an ``(answer, contexts)`` tuple, a mapping
with ``answer``/``contexts``, a ``ChatResult`` or a RAG ``Answer``. Wrap it with
:func:`target` to record its pipeline config (model, prompt hash, chunking, retrieval
mode) in every run, which is what makes two runs comparable.

Built in: :func:`rag_target` (``workbench.retrieval.ask``), :func:`chat_target` (a plain
governed chat call) and :data:`RECORDED` (the answers already stored in the dataset).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from workbench.errors import BadRequest

if TYPE_CHECKING:
    from workbench.models.gateway import Gateway


@dataclass
class Response:
    answer: str
    contexts: list[str] = field(default_factory=list)
    latency_ms: float | None = None
    cost_usd: float | None = None
    trace_id: str | None = None
    facts: dict[str, Any] | None = None  # an agent run's tool calls, steps, stop reason


def normalise(value: Any, latency_ms: float | None = None) -> Response:
    """Turn whatever a target returned into a :class:`Response`."""
    if isinstance(value, Response):
        return value
    facts_of = getattr(value, "eval_facts", None)
    if callable(facts_of):  # an agent run
        return Response(str(getattr(value, "answer", None) or ""), [],
                        getattr(value, "latency_ms", None) or latency_ms,
                        getattr(value, "cost_usd", None), getattr(value, "trace_id", None),
                        facts=facts_of())
    if isinstance(value, str):
        return Response(value, latency_ms=latency_ms)
    if isinstance(value, tuple) and len(value) == 2:
        answer, contexts = value
        return Response(str(answer), [str(c) for c in contexts or []], latency_ms=latency_ms)
    if isinstance(value, Mapping):
        return Response(str(value.get("answer") or ""), [str(c) for c in value.get("contexts") or []],
                        value.get("latency_ms", latency_ms), value.get("cost_usd"),
                        value.get("trace_id"))
    answer = getattr(value, "answer", None)
    if not isinstance(answer, str):
        answer = getattr(value, "text", None)
    if not isinstance(answer, str):
        raise BadRequest(f"a target returned a {type(value).__name__}; return a string, an "
                         "(answer, contexts) tuple, a dict, a ChatResult or an Answer")
    contexts = getattr(value, "contexts", None)
    if contexts is None:
        contexts = [getattr(s, "snippet", "") for s in getattr(value, "sources", None) or []]
    return Response(answer, [str(c) for c in contexts],
                    getattr(value, "latency_ms", None) or latency_ms,
                    getattr(value, "cost_usd", None), getattr(value, "trace_id", None))


@dataclass
class Target:
    """A callable system under test plus the config that identifies it in a run."""

    fn: Callable[[str], Any]
    config: dict[str, Any] = field(default_factory=dict)

    def __call__(self, question: str) -> Response:
        started = time.perf_counter()
        out = self.fn(question)
        return normalise(out, (time.perf_counter() - started) * 1000)


def target(fn: Callable[[str], Any] | None = None, **config: Any) -> Any:
    """``target(fn, model=..., prompt=...)`` or ``@target(model=...)``. A ``prompt``
    value is recorded as its hash (``prompt_hash``)."""
    if "prompt" in config:
        config["prompt_hash"] = prompt_hash(str(config.pop("prompt")))

    def wrap(f: Callable[[str], Any]) -> Target:
        name = getattr(f, "__qualname__", type(f).__name__)
        return Target(f, {"kind": "callable", "name": name, **config})

    return wrap(fn) if fn is not None else wrap


def as_target(value: Any) -> Target | None:
    if value is None or value == "recorded":
        return None
    if isinstance(value, Target):
        return value
    if callable(value):
        return target(value)
    raise BadRequest(f"target must be a callable question -> answer, got {type(value).__name__}")


RECORDED = "recorded"


def prompt_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def chat_target(gw: Gateway, *, model: str | None = None, system: str | None = None,
                max_tokens: int = 128) -> Target:
    """Ask the model directly, no retrieval (a baseline, or a non-RAG feature)."""

    def ask(question: str) -> Response:
        messages = ([{"role": "system", "content": system}] if system else []) + [
            {"role": "user", "content": question}]
        res = gw.chat(messages, model=model, max_tokens=max_tokens, temperature=0)
        return Response(res.text.strip(), [], res.latency_ms, res.cost_usd, res.trace_id)

    return Target(ask, {"kind": "chat", "model": model or gw.settings.default_chat_model,
                        "prompt_hash": prompt_hash(system or ""), "max_tokens": max_tokens})


def rag_target(gw: Gateway, *, collection: str = "docs", k: int = 3, mode: str = "hybrid",
               model: str | None = None, max_tokens: int = 128,
               chars_per_source: int = 600, prompt: str | None = None) -> Target:
    """``workbench.retrieval.ask`` as a target. The judged contexts are the chunks the
    answer was grounded on (the same search, recorded under the answer's trace id).

    ``prompt``: the registry prompt to answer with (``"rag.answer@candidate"``, a version;
    default: ``production``), resolved once here so the whole run uses one version; its
    name and version are in the run's config (``eval compare`` says when it changed)."""
    from workbench import prompts
    from workbench.retrieval import Collections, Searcher, answer_strategies, ask
    from workbench.retrieval import rag as rag_mod

    template = prompts.resolve(gw.store, prompt, prompts.RAG_ANSWER)

    meta = Collections.for_settings(gw.settings).require_meta(collection)
    searcher = Searcher(gw, collection)
    min_sim = rag_mod.MIN_SIMILARITY

    def run(question: str) -> Response:
        ans = ask(gw, question, collection=collection, k=k, mode=mode,  # type: ignore[arg-type]
                  model=model, max_tokens=max_tokens, chars_per_source=chars_per_source,
                  prompt=template)
        contexts = getattr(ans, "contexts", None)
        if contexts is None and ans.sources:
            hits = searcher.search(question, k=k, mode=mode,  # type: ignore[arg-type]
                                   trace_id=ans.trace_id)
            contexts = [h.text[:chars_per_source] for h in hits
                        if h.similarity is None or h.similarity >= min_sim]
        return Response(ans.answer, list(contexts or []), ans.latency_ms or None, None,
                        ans.trace_id)

    return Target(run, {
        "kind": "rag", "collection": collection, "k": k, "retrieval_mode": mode,
        "model": model or gw.settings.default_chat_model, "max_tokens": max_tokens,
        "prompt_hash": prompt_hash(f"{template.version}|{chars_per_source}"),
        "prompt": {"name": template.name, "version": template.version},
        "chunking": dict(meta.chunking), "embed_model": meta.embed_model,
        # extractive / constrained / free: a strategy change is a change `eval compare` shows
        "answer_strategy": answer_strategies.resolve(gw, gw.spec(model)),
    })


__all__ = ["RECORDED", "Response", "Target", "as_target", "chat_target", "normalise",
           "prompt_hash", "rag_target", "target"]
