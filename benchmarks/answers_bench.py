"""Grounded answers on the embedded model: each answer strategy of ``ask()`` against
today's prompt (the baseline), on a labelled question set, in one run.

Corpus (nobody here wrote it): the CPython standard library's own documentation, built
exactly as benchmarks/retrieval_bench.py builds it (module docstrings plus the first
paragraph of every public class/function docstring, one Markdown file per module): the
modules the questions are about plus distractor modules. Labelled set:
benchmarks/data/answers_questions.jsonl, each on-topic question with the facts a right
answer must state (every group must be matched by one of its alternatives,
case-insensitively) and the module whose page holds them; off-topic questions must get
"I don't know". Every fact is checked to be in its module's page before the run.

For every question, interleaved so that load on the shared machine hits all alike:
- baseline: ``strategy="free", verify=False``: today's prompt, the model's text as is;
- free: the same model call with the verifier (its draft *is* the baseline answer, so
  one model call gives both; they share the latency figure);
- constrained: the model picks evidence sentences through a JSON-schema enum;
- extractive: the best evidence sentences, no generation.

Reported per strategy: fact accuracy, citation accuracy (cites a source from the right
module, and cites nothing that does not exist), both at once ("correct+cited"), on
off-topic questions the share answered "I don't know", the precision of "I don't know"
(of all IDK answers, the share that were off-topic), median and p90 wall latency of
``ask()`` and its median process CPU time (load on a shared machine inflates the former).

    .venv/bin/python benchmarks/answers_bench.py            # full run (~10-30 min)
    .venv/bin/python benchmarks/answers_bench.py --quick    # 4 questions, for the smoke test
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _common import machine_note, percentile, print_table
from retrieval_bench import stdlib_docs

import workbench
from workbench.retrieval import ingest
from workbench.retrieval.answer_strategies import citations
from workbench.retrieval.rag import Answer, ask

DATA = Path(__file__).resolve().parent / "data" / "answers_questions.jsonl"
COLLECTION = "stdlib"
DISTRACTORS = 60  # modules nobody asks about, so retrieval has to choose
_IDK = re.compile(r"\bi (?:don'?t|do not) know\b", re.I)
RUNS = ("baseline", "free", "constrained", "extractive")


@dataclass
class Question:
    id: str
    question: str
    facts: list[list[str]] = field(default_factory=list)
    source: str | None = None
    off_topic: bool = False


@dataclass
class Outcome:
    text: str
    latency_s: float
    cpu_s: float  # process CPU time (all threads): what the answer costs, load or not
    idk: bool
    facts_ok: bool
    cited_ok: bool


def load_questions(path: Path = DATA) -> list[Question]:
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            out.append(Question(**json.loads(line)))
    return out


def check_labels(questions: list[Question], docs: dict[str, str]) -> None:
    """Every fact must be in its module's page: a label that is not is a bad label."""
    for q in questions:
        if q.off_topic:
            continue
        doc = docs.get(q.source or "")
        if doc is None:
            raise SystemExit(f"{q.id}: no page for module {q.source!r} in this Python")
        for group in q.facts:
            if not any(f.lower() in doc.lower() for f in group):
                raise SystemExit(f"{q.id}: none of {group} is in {q.source}'s page")


def grade(q: Question, text: str, answer: Answer, latency_s: float, cpu_s: float
          ) -> Outcome:
    idk = bool(_IDK.search(text)) or not answer.grounded
    if q.off_topic:
        return Outcome(text, latency_s, cpu_s, idk, False, False)
    low = text.lower()
    facts_ok = not idk and all(any(f.lower() in low for f in group) for group in q.facts)
    cited = citations(text)
    n = len(answer.sources)
    right = {s.n for s in answer.sources if Path(s.source).stem == q.source}
    cited_ok = bool(cited) and all(1 <= c <= n for c in cited) and bool(right & set(cited))
    return Outcome(text, latency_s, cpu_s, idk, facts_ok, cited_ok)


def run_question(gw: Any, q: Question, strategies: tuple[str, ...]) -> dict[str, Outcome]:
    out: dict[str, Outcome] = {}
    for strategy in strategies:  # baseline comes with free
        t0, c0 = time.perf_counter(), time.process_time()
        ans = ask(gw, q.question, collection=COLLECTION, strategy=strategy)
        dt, cpu = time.perf_counter() - t0, time.process_time() - c0
        if strategy == "free":
            # The verifier's input is the baseline's answer: same call, same latency.
            draft = ans.draft if ans.grounded else ans.answer
            out["baseline"] = grade(q, draft, ans, dt, cpu)
        out[strategy] = grade(q, ans.answer, ans, dt, cpu)
    return out


def report(questions: list[Question], results: list[dict[str, Outcome]]) -> None:
    rows = []
    for run in RUNS:
        # A run may cover only some questions (--model-questions): its own denominators.
        idx = [i for i, r in enumerate(results) if run in r]
        if not idx:
            continue
        on = [i for i in idx if not questions[i].off_topic]
        off = [i for i in idx if questions[i].off_topic]
        got = {i: results[i][run] for i in idx}
        facts = sum(got[i].facts_ok for i in on)
        cited = sum(got[i].cited_ok for i in on)
        both = sum(got[i].facts_ok and got[i].cited_ok for i in on)
        idk_off = sum(got[i].idk for i in off)
        idk_all = sum(o.idk for o in got.values())
        lat = [o.latency_s for o in got.values()]
        cpu = [o.cpu_s for o in got.values()]
        rows.append([run, f"{facts}/{len(on)} {facts / max(len(on), 1):.0%}",
                     f"{cited}/{len(on)} {cited / max(len(on), 1):.0%}",
                     f"{both}/{len(on)} {both / max(len(on), 1):.0%}",
                     f"{idk_off}/{len(off)}" if off else "-",
                     f"{idk_off / idk_all:.0%}" if idk_all else "-",
                     f"{statistics.median(lat):.2f}", f"{percentile(lat, 90):.2f}",
                     f"{statistics.median(cpu):.2f}"])
    n_on = sum(not q.off_topic for q in questions)
    print_table(f"answers on the embedded model ({n_on} on-topic, {len(questions) - n_on} "
                "off-topic questions; facts/cited columns show each run's own denominator)",
                ["strategy", "facts", "cited", "correct+cited", "IDK off-topic",
                 "IDK precision", "p50 s", "p90 s", "p50 cpu s"], rows)
    print("latency: wall time of ask() on this (shared) machine; cpu: process CPU seconds "
          "of ask() over all threads (2 llama.cpp threads), which load does not inflate")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="4 questions, small corpus")
    ap.add_argument("--show", action="store_true", help="print every answer")
    ap.add_argument("--strategies", default="free,constrained,extractive",
                    help="comma-separated subset (free also gives the baseline)")
    ap.add_argument("--distractors", type=int, default=DISTRACTORS,
                    help="modules nobody asks about in the corpus")
    ap.add_argument("--model-questions", type=int, default=None, metavar="N",
                    help="ask the model strategies (baseline/free, constrained) only N "
                    "on-topic questions, spread over the set, and every off-topic one; "
                    "extractive answers all (for a machine too loaded for a full run)")
    args = ap.parse_args()
    print(machine_note())
    questions = load_questions()
    if args.quick:
        questions = ([q for q in questions if not q.off_topic][:3]
                     + [q for q in questions if q.off_topic][:1])
    docs = stdlib_docs(limit=None)
    check_labels(questions, docs)
    wanted = {q.source for q in questions if q.source}
    others = [m for m in sorted(docs) if m not in wanted][:5 if args.quick else args.distractors]
    chosen = tuple(x.strip() for x in args.strategies.split(",") if x.strip())
    if not chosen or set(chosen) - {"free", "constrained", "extractive"}:
        raise SystemExit("--strategies: choose from free, constrained, extractive")
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as tmp:
        corpus = Path(tmp) / "stdlib-docs"
        corpus.mkdir()
        for name in sorted(wanted) + others:
            (corpus / f"{name}.md").write_text(docs[name], encoding="utf-8")
        gw = workbench.connect(data_dir=str(Path(tmp) / "data"))
        t0 = time.perf_counter()
        ingest(gw, [corpus], collection=COLLECTION, progress=False)
        print(f"corpus: {len(wanted) + len(others)} stdlib modules, ingested in "
              f"{time.perf_counter() - t0:.0f} s; chat model {gw.settings.default_chat_model}")
        gw.chat("Hi", max_tokens=1)  # load the model weights before timing
        on_ids = [q.id for q in questions if not q.off_topic]
        n = args.model_questions
        modelled = set(on_ids if n is None or n >= len(on_ids)
                       else [on_ids[round(i * len(on_ids) / n)] for i in range(n)])
        results = []
        started = time.perf_counter()
        for q in questions:
            models = q.off_topic or q.id in modelled
            strategies = tuple(x for x in chosen if models or x == "extractive")
            res = run_question(gw, q, strategies)
            results.append(res)
            if args.show:
                print(f"\n## {q.id}: {q.question}")
                for run in (r for r in RUNS if r in res):
                    o = res[run]
                    mark = "ok" if (o.facts_ok and o.cited_ok) or (q.off_topic and o.idk) else "--"
                    print(f"  {run:<11} {mark} {o.latency_s:5.1f}s {o.text[:220]!r}")
        print(f"\n{len(questions)} questions ({len(modelled)} on-topic ones through the "
              f"model strategies) in {time.perf_counter() - started:.0f} s")
        report(questions, results)
        gw.close()
    print(machine_note())


if __name__ == "__main__":
    main()
