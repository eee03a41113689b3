"""Multi-turn evals: golden conversations run turn by turn, each turn checked.

A conversations file (YAML or JSON) lists conversations; each turn is a question plus
the same checks golden datasets use (``{"contains": "45"}``, ``{"regex": ...}``, see
``evals.checks.from_spec``) and optionally a ``judge`` criterion (the probe judge)::

    name: handbook-chat
    version: "1"
    conversations:
      - id: travel
        turns:
          - question: What is the daily meal allowance?
            checks: [{contains: "45"}]
          - question: Within how many days do I submit the receipts?
            checks: [{contains: "30"}]

:func:`run_conversations` asks through the Gateway in process (``rag.ask`` with the
conversation's history, under one ``session.id``) or through a running service
(``url``: ``POST /ask`` with the ``session_id`` the first answer returned). Every turn is
eval traffic (left out of product metrics). The result is an eval run (one sample per
turn, ``conversation#n``) saved with the prompt name and version, so ``workbench eval
compare`` works on conversation runs too.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.errors import BadRequest, WorkbenchError
from workbench.evals.remote import call_json

if TYPE_CHECKING:
    from workbench.evals.runs import Run
    from workbench.models.gateway import Gateway

MAX_TURNS = 50


@dataclass(frozen=True)
class Turn:
    question: str
    checks: tuple[dict[str, Any], ...] = ()
    judge: str | None = None


@dataclass(frozen=True)
class Conversation:
    id: str
    turns: tuple[Turn, ...]
    tags: tuple[str, ...] = ()


@dataclass
class ConversationSet:
    name: str
    version: str
    conversations: list[Conversation]

    @property
    def fingerprint(self) -> str:
        blob = json.dumps([[c.id, [[t.question, list(t.checks), t.judge] for t in c.turns]]
                           for c in self.conversations], sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _turn(data: Any, where: str) -> Turn:
    from workbench.evals.checks import from_spec

    if isinstance(data, str):
        data = {"question": data}
    if not isinstance(data, Mapping) or not str(data.get("question") or "").strip():
        raise BadRequest(f"{where}: a turn needs a question")
    unknown = sorted(set(data) - {"question", "checks", "judge"})
    if unknown:
        raise BadRequest(f"{where}: unknown field(s) {unknown}; a turn has question, checks, "
                         "judge")
    checks = data.get("checks") or []
    if not isinstance(checks, list):
        raise BadRequest(f"{where}: checks must be a list of check objects")
    for i, spec in enumerate(checks):
        try:
            from_spec(spec)
        except WorkbenchError as exc:
            raise BadRequest(f"{where}: checks[{i}]: {exc.message}") from None
    judge = data.get("judge")
    if judge is not None and (not isinstance(judge, str) or not judge.strip()):
        raise BadRequest(f"{where}: judge must be the criterion, as text")
    return Turn(str(data["question"]).strip(), tuple(dict(c) for c in checks), judge)


def load_conversations(source: str | Path | Mapping[str, Any] | Sequence[Any]
                       ) -> ConversationSet:
    """Conversations from a YAML/JSON file, a mapping like the file, or a list of them."""
    if isinstance(source, str | Path):
        path = Path(source)
        if not path.exists():
            raise BadRequest(f"no conversations file {path}")
        text = path.read_text(encoding="utf-8")
        if path.suffix in (".yaml", ".yml"):
            import yaml

            try:
                data: Any = yaml.safe_load(text)
            except yaml.YAMLError as exc:
                raise BadRequest(f"{path}: not valid YAML ({exc})") from None
        else:
            try:
                data = json.loads(text)
            except ValueError as exc:
                raise BadRequest(f"{path}: not valid JSON ({exc})") from None
        default_name = path.stem
    else:
        data, default_name = source, "conversations"
    if isinstance(data, Sequence) and not isinstance(data, str):
        data = {"conversations": list(data)}
    if not isinstance(data, Mapping) or not isinstance(data.get("conversations"), list):
        raise BadRequest("a conversations file has a `conversations:` list")
    out: list[Conversation] = []
    seen: set[str] = set()
    for i, conv in enumerate(data["conversations"]):
        where = f"conversation {i + 1}"
        if not isinstance(conv, Mapping) or not isinstance(conv.get("turns"), list) \
                or not conv["turns"]:
            raise BadRequest(f"{where}: needs a non-empty `turns:` list")
        if len(conv["turns"]) > MAX_TURNS:
            raise BadRequest(f"{where}: {len(conv['turns'])} turns; the limit is {MAX_TURNS}")
        cid = str(conv.get("id") or f"c{i + 1}")
        if cid in seen:
            raise BadRequest(f"{where}: duplicate id {cid!r}")
        seen.add(cid)
        turns = tuple(_turn(t, f"{cid} turn {j + 1}") for j, t in enumerate(conv["turns"]))
        out.append(Conversation(cid, turns, tuple(str(t) for t in conv.get("tags") or ())))
    return ConversationSet(str(data.get("name") or default_name),
                           str(data.get("version") or "1"), out)


@dataclass
class TurnResult:
    conversation: str
    n: int
    question: str
    answer: str | None
    passed: bool
    reasons: list[str]
    trace_id: str | None = None
    history_turns: int = 0
    session_id: str | None = None
    error: str | None = None


@dataclass
class ConversationRun:
    """Every turn's result; ``run`` is the stored eval run (None when not saved)."""

    results: list[TurnResult]
    prompt: str | None
    target: str
    run: Run | None = None
    conversations_passed: int = 0
    conversations: int = 0

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    def rows(self) -> list[dict[str, Any]]:
        return [{"conversation": r.conversation, "turn": r.n, "ok": "pass" if r.passed else
                 "FAIL", "history": r.history_turns, "question": r.question[:60],
                 "answer": (r.answer or "")[:80], "why": r.error or "; ".join(r.reasons)}
                for r in self.results]

    def lines(self) -> list[str]:
        out = [f"{r['ok']:<4} {r['conversation']}#{r['turn']} (history {r['history']}) "
               f"{r['question']} -> {r['answer']!r} {r['why']}" for r in self.rows()]
        ok = sum(r.passed for r in self.results)
        out.append(f"{ok}/{len(self.results)} turns passed, {self.conversations_passed}/"
                   f"{self.conversations} conversations; prompt {self.prompt or '-'}"
                   + (f"; run {self.run.id}" if self.run else ""))
        return out

    def __repr__(self) -> str:
        return "\n".join(self.lines())

    def _repr_html_(self) -> str:
        from workbench.observability.views import html_table

        return html_table(self.rows(), ("conversation", "turn", "ok", "history", "question",
                                        "answer", "why"))


def _check_turn(turn: Turn, question: str, answer: str,
                gw: Gateway | None) -> tuple[bool, list[str], list[tuple[str, bool, str]]]:
    from workbench.evals.checks import Output, from_spec
    from workbench.evals.probe_checks import Expectation, check

    results: list[tuple[str, bool, str]] = []
    for spec in turn.checks:
        c = from_spec(spec, gw)
        res = c(Output(answer, (), None, None, question, None))
        results.append((f"check:{c.name}", bool(res.passed), res.reason))
    if turn.judge:
        verdict = check(Expectation(kind="judge", target=turn.judge), answer, question, gw)
        results.append(("check:judge", verdict.ok, verdict.detail))
    failed = [f"{name}: {why}" for name, ok, why in results if not ok]
    return not failed, failed, results


def run_conversations(gw: Gateway, conversations: Any, *, collection: str = "docs",
                      url: str | None = None, key: str | None = None,
                      prompt: str | None = None, model: str | None = None, k: int = 3,
                      max_tokens: int = 128, save: bool = True,
                      name: str | None = None) -> ConversationRun:
    """Run each conversation turn by turn (see the module docs); ``url``/``key``: through
    a running service instead of the Gateway in process (then the service's prompt is
    the one it has in production and ``prompt`` must be None)."""
    from workbench import prompts
    from workbench.evals.records import SampleRecord, Score
    from workbench.evals.runs import Run, RunStore, new_run_id
    from workbench.observability import tracing
    from workbench.sessions.history import new_session_id

    cset = conversations if isinstance(conversations, ConversationSet) else \
        load_conversations(conversations)
    if url and prompt:
        raise BadRequest("a service answers with its production prompt: leave prompt out "
                         "with url, or run in process")
    template = None if url else prompts.resolve(gw.store, prompt, prompts.RAG_ANSWER)
    results: list[TurnResult] = []
    records: list[SampleRecord] = []
    scores: list[Score] = []
    seen_prompts: set[str] = set()
    started = time.perf_counter()
    client = _client(url, key) if url else None
    try:
        for conv in cset.conversations:
            history: list[tuple[str, str]] = []
            session_id: str | None = None if url else new_session_id()
            for n, turn in enumerate(conv.turns, 1):
                sample_id = f"{conv.id}#{n}"
                rec = SampleRecord(sample_id, turn.question, tags=["conversation", *conv.tags])
                try:
                    if client is not None:
                        data = _ask_service(client, turn.question, session_id)
                        session_id = data.get("session_id") or session_id
                        answer, trace_id = str(data.get("answer") or ""), data.get("trace_id")
                        used, ref = int(data.get("history_turns") or 0), data.get("prompt")
                    else:
                        from workbench.retrieval import ask

                        with tracing.session(session_id), tracing.traffic("eval"):
                            ans = ask(gw, turn.question, collection=collection, k=k,
                                      model=model, max_tokens=max_tokens, prompt=template,
                                      history=history)
                        answer, trace_id = ans.answer, ans.trace_id
                        used, ref = ans.history_turns, ans.prompt
                        history.append((turn.question, answer))
                except WorkbenchError as exc:
                    rec.error = exc.message
                    results.append(TurnResult(conv.id, n, turn.question, None, False, [],
                                              error=exc.message, session_id=session_id))
                    records.append(rec)
                    continue
                if ref:
                    seen_prompts.add(str(ref))
                rec.answer, rec.trace_id = answer, trace_id
                ok, why, checked = _check_turn(turn, turn.question, answer, gw)
                records.append(rec)
                scores += [Score(sample_id, metric, "check", "ok", value=1.0 if p else 0.0,
                                 reason=r, passed=p) for metric, p, r in checked]
                results.append(TurnResult(conv.id, n, turn.question, answer, ok, why,
                                          trace_id, used, session_id))
    finally:
        if client is not None:
            client.close()
    ref_used = template.ref if template else (sorted(seen_prompts)[-1] if seen_prompts
                                                else None)
    by_conv: dict[str, bool] = {}
    for r in results:
        by_conv[r.conversation] = by_conv.get(r.conversation, True) and r.passed
    out = ConversationRun(results, ref_used, url or f"gateway:{collection}",
                          conversations_passed=sum(by_conv.values()),
                          conversations=len(by_conv))
    if save:
        pname, _, pversion = (ref_used or "").partition("@")
        target_cfg: dict[str, Any] = {"kind": "conversation", "collection": collection,
                                      "url": url, "model": model or
                                      gw.settings.default_chat_model, "k": k,
                                      "max_tokens": max_tokens}
        if ref_used:
            target_cfg["prompt"] = {"name": pname, "version": pversion}
        run = Run(id=new_run_id(), name=name, dataset=cset.name, dataset_version=cset.version,
                  dataset_fingerprint=cset.fingerprint,
                  config={"target": target_cfg, "judge": {"model": None}, "metrics": [],
                          "checks": []},
                  samples=records, scores=scores,
                  usage={"wall_s": round(time.perf_counter() - started, 3),
                         "turns": len(records)})
        out.run = RunStore(gw.store).save(run)
    return out


def _client(url: str, key: str | None) -> Any:
    import httpx

    headers = {"x-workbench-traffic": "eval"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    return httpx.Client(base_url=url.rstrip("/").removesuffix("/ask"), headers=headers,
                        timeout=600)


def _ask_service(client: Any, question: str, session_id: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {"question": question}
    if session_id:
        body["session_id"] = session_id
    return call_json(lambda: client.post("/ask", json=body), "POST /ask", code="ask")[0]


__all__ = ["Conversation", "ConversationRun", "ConversationSet", "Turn", "TurnResult",
           "load_conversations", "run_conversations"]
