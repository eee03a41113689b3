"""One request through the RAG pipeline: :func:`workbench.retrieval.ask`, traced under
the request's trace id, optionally streaming the answer as it is generated.

The service adds no retrieval or prompt logic of its own. ``retrieval.ask`` mints its own
trace id and answers in one piece, so the service hands it a view of the Gateway made by
:meth:`Gateway.bind` that (1) runs every call under the request's trace id, nested in the
service's root span, and (2) when streaming, streams the chat call and passes each piece
to a callback. Budgets, rate limits, guardrails and the ledger apply exactly as in
``Gateway.chat``; a stream that is cut short is closed, which settles its budget
reservation and ends its span.
"""

from __future__ import annotations

import os
from contextlib import ExitStack
from dataclasses import dataclass

from workbench.models.gateway import Gateway, TokenSink
from workbench.observability import tracing
from workbench.retrieval import Answer
from workbench.retrieval import ask as rag_ask
from workbench.retrieval.search import Mode
from workbench.service.conversation import Conversation, record_turn


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
    streamed = False  # some model text went to on_token

    def sink(piece: str) -> None:
        nonlocal streamed
        streamed = True
        if on_token is not None:
            on_token(piece)  # raises ClientGone when nobody is listening any more

    view = gw.bind(trace_id=trace_id, on_token=sink if on_token is not None else None)
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
        if on_token is not None and not streamed:
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


__all__ = ["AskOptions", "ClientGone", "TokenSink", "run_ask"]
