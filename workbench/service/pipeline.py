"""One request through the RAG pipeline: :func:`workbench.retrieval.ask`, traced under
the request's trace id, optionally streaming the answer as it is generated.

The service adds no retrieval or prompt logic of its own. ``retrieval.ask`` mints its own
trace id and answers in one piece, so the service hands it a *request view* of the
Gateway that (1) runs every call under the request's trace id, nested in the service's
root span, and (2) when streaming, turns the chat call into ``Gateway.stream`` and passes
each piece to a callback. Budgets, rate limits, guardrails and the ledger apply exactly
as in ``Gateway.chat``; a stream that is cut short is closed, which settles its budget
reservation and ends its span.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

from workbench.errors import UpstreamError
from workbench.models.gateway import Gateway, Messages
from workbench.models.types import ChatResult, EmbeddingResult
from workbench.observability import tracing
from workbench.retrieval import Answer
from workbench.retrieval import ask as rag_ask
from workbench.retrieval.search import Mode
from workbench.service.conversation import Conversation, record_turn

TokenSink = Callable[[str], None]


class ClientGone(Exception):
    """Raised inside the pipeline's thread when the client left mid-answer."""

    code = "client_disconnected"
    message = "the client disconnected before the answer was complete"


@dataclass(frozen=True)
class AskOptions:
    collection: str
    k: int = 3
    mode: Mode = "hybrid"
    model: str | None = None
    max_tokens: int = 128


class RequestGateway(Gateway):
    """A Gateway view for one request: same principal, store and providers; every call
    joins the request's trace; chat streams to ``on_token`` when one is set."""

    request_trace_id: str
    on_token: TokenSink | None
    streamed: bool  # some model text went to on_token

    def embed(self, texts: str | list[str], *, model: str | None = None,
              trace_id: str | None = None) -> EmbeddingResult:
        return super().embed(texts, model=model, trace_id=self.request_trace_id)

    def chat(self, messages: Messages, *, model: str | None = None,
             trace_id: str | None = None, **params: Any) -> ChatResult:
        if self.on_token is None or params.get("response_format") is not None:
            # Structured output (the constrained answer strategy) is JSON, not text for
            # the reader: run it in one piece; run_ask sends the composed answer.
            return super().chat(messages, model=model, trace_id=self.request_trace_id, **params)
        stream = self.stream(messages, model=model, trace_id=self.request_trace_id, **params)
        try:
            for piece in stream.text():
                self.streamed = True
                self.on_token(piece)  # raises ClientGone when nobody is listening any more
        finally:
            stream.close()  # a no-op after the last chunk; settles the budget if cut short
        if stream.result is None:
            raise UpstreamError("the model's stream ended without a result")
        return stream.result


def request_gateway(gw: Gateway, trace_id: str, on_token: TokenSink | None = None
                    ) -> RequestGateway:
    # The same shallow view Gateway.as_key() makes: shared store, policy and providers.
    view = object.__new__(RequestGateway)
    view.__dict__.update(gw.__dict__)
    view.request_trace_id = trace_id
    view.on_token = on_token
    view.streamed = False
    return view


def run_ask(gw: Gateway, question: str, opts: AskOptions, *, trace_id: str,
            on_token: TokenSink | None = None,
            conversation: Conversation | None = None) -> Answer:
    """Answer ``question`` under a root CHAIN span whose trace id is ``trace_id``.

    Runs in a worker thread (retrieval, the embedder and the model are blocking).
    Question and answer are masked before they are recorded on the span: traces never
    hold raw PII, whatever the principal's guardrail mode. In a ``conversation`` every
    span carries its ``session.id``, the model sees the history that fits, and the turn
    is stored.
    """
    if conversation is None:
        return _run_ask(gw, question, opts, trace_id, on_token, None)
    with ExitStack() as stack:
        stack.enter_context(tracing.session(conversation.id))
        if conversation.traffic:
            stack.enter_context(tracing.traffic(conversation.traffic))
        answer = _run_ask(gw, question, opts, trace_id, on_token, conversation)
    record_turn(gw, conversation, trace_id=answer.trace_id, question=question,
                answer=answer.answer, model=answer.model, prompt=answer.prompt)
    answer.session_id = conversation.id
    return answer


def _run_ask(gw: Gateway, question: str, opts: AskOptions, trace_id: str,
             on_token: TokenSink | None, conversation: Conversation | None) -> Answer:
    mask = gw.guardrails.mask
    view = request_gateway(gw, trace_id, on_token)
    with tracing.span("service.ask", kind="CHAIN", input=mask(question).text, gateway=gw,
                      trace_id=trace_id) as root:
        root.set_attributes({"workbench.collection": opts.collection,
                             "workbench.streamed": on_token is not None,
                             "workbench.team": gw.principal.team,
                             "workbench.key_id": gw.principal.key_id,
                             "user.id": gw.principal.key_id or "local",
                             "process.pid": os.getpid()})
        answer = rag_ask(view, question, collection=opts.collection, k=opts.k,
                         mode=opts.mode, model=opts.model, max_tokens=opts.max_tokens,
                         history=conversation.history if conversation else ())
        if on_token is not None and not view.streamed:
            # Extractive and constrained answers are composed, not generated token by
            # token: the stream still carries the text, in one piece.
            on_token(answer.answer)
        # ask() labels an answer it did not need the model for with its own trace id.
        answer.trace_id = root.trace_id
        root.set_output(mask(answer.answer).text)
        root.set_attributes({"workbench.grounded": answer.grounded,
                             "workbench.sources": len(answer.sources),
                             "llm.model_name": answer.model,
                             "workbench.history_turns": answer.history_turns})
        if answer.prompt:
            name, _, version = answer.prompt.partition("@")
            root.set_attributes({"workbench.prompt.name": name,
                                 "workbench.prompt.version": version,
                                 "llm.prompt_template.version": answer.prompt})
    return answer


__all__ = ["AskOptions", "ClientGone", "RequestGateway", "TokenSink", "request_gateway",
           "run_ask"]
