"""Grounded answers: sentence evidence, the extractive/constrained/free strategies, the
citation verifier, streaming of composed answers, and the tour's own question answered
right on the real embedded model."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fakes import FakeProvider
from workbench.config import ModelSpec, load_settings
from workbench.errors import BadRequest, PermissionDenied
from workbench.models.gateway import Gateway
from workbench.retrieval import ingest
from workbench.retrieval.answer_strategies import (
    citations,
    compose,
    generation_params,
    is_tiny,
    parse_choice,
    resolve,
    verify,
)
from workbench.retrieval.chunking import chunk_text, headings
from workbench.retrieval.evidence import Sentence, split_sentences
from workbench.retrieval.rag import IDK, ask

SOURCES = ["When visibility drops, the foghorn sounds every thirty seconds until the fog "
           "lifts.", "The keeper lights the Fresnel lamp at dusk and trims the wick."]
FAKE = [{"name": "fake-model", "provider": "fake"}]
FOG = "How often does the foghorn sound when visibility drops?"


# -- the verifier (unit) ----------------------------------------------------------------
def test_verifier_drops_citations_of_sources_that_do_not_exist() -> None:
    v = verify("The foghorn sounds every thirty seconds [1][7], until the fog lifts [3].",
               SOURCES)
    assert v.ok and v.cited == [1] and v.dropped == [7, 3]
    assert citations(v.text) == [1] and "[7]" not in v.text and "[3]" not in v.text
    assert v.text == "The foghorn sounds every thirty seconds [1], until the fog lifts."


def test_verifier_rejects_answers_that_cite_nothing_real() -> None:
    assert not verify("The foghorn sounds every thirty seconds.", SOURCES).ok
    only_fake = verify("The foghorn sounds every thirty seconds [5].", SOURCES)
    assert not only_fake.ok and only_fake.dropped == [5] and "do not exist" in only_fake.reason


def test_verifier_rejects_an_answer_with_no_overlap_with_its_evidence() -> None:
    # Cites a real source, but says something that source does not contain.
    v = verify("Paris hosts a famous jazz festival every summer [2].", SOURCES)
    assert not v.ok and v.cited == [2] and v.overlap < 0.35
    # The same words cited from the source that holds them pass.
    assert verify("The foghorn sounds every thirty seconds [1].", SOURCES).ok


def test_indexing_in_quoted_code_is_not_a_citation() -> None:
    assert citations("a[0] is always its smallest element [1][2], see x[3] [4, 1]") == [1, 2, 4]
    v = verify("The heap keeps heap[0] smallest [1].", ["heap[0] is the smallest item"])
    assert v.ok and v.text == "The heap keeps heap[0] smallest [1]." and not v.dropped


def test_verifier_accepts_i_dont_know_as_such() -> None:
    v = verify("I don't know.", SOURCES)
    assert v.ok and v.idk and v.cited == []


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=30), max_size=6), st.text(max_size=60))
def test_verifier_never_leaves_a_citation_that_does_not_exist(cites: list[int],
                                                              words: str) -> None:
    text = words + " " + " ".join(f"[{n}]" for n in cites)
    v = verify(text, SOURCES)
    assert all(1 <= n <= len(SOURCES) for n in citations(v.text)) or v.idk
    assert set(v.dropped).isdisjoint(v.cited)


# -- evidence and composition (unit) ----------------------------------------------------
def test_sentences_keep_their_heading_and_leave_code_out() -> None:
    text = ("## Fog signals\n\nWhen visibility drops, the foghorn sounds. It stops when the "
            "fog lifts.\n\n```bash\n# sound the horn now\nhorn --now\n```\n\n### Lamps\n\n"
            "- The keeper lights the lamp at dusk.\n- He trims the wick at midnight.\n")
    got = split_sentences(text, "Lighthouse keeping > Fog signals")
    assert got == [("Fog signals", "When visibility drops, the foghorn sounds."),
                   ("Fog signals", "It stops when the fog lifts."),
                   ("Lamps", "The keeper lights the lamp at dusk."),
                   ("Lamps", "He trims the wick at midnight.")]


def test_compose_cites_each_source_run_once_in_reading_order() -> None:
    a = Sentence(1, 1, "Fog signals", "The foghorn sounds every thirty seconds.")
    b = Sentence(2, 1, "Fog signals", "It stops when the fog lifts.")
    c = Sentence(5, 2, "Lamps", "The keeper lights the lamp at dusk.")
    assert compose([c, b, a]) == ("Fog signals: The foghorn sounds every thirty seconds. "
                                  "It stops when the fog lifts. [1] "
                                  "Lamps: The keeper lights the lamp at dusk. [2]")


def test_model_choices_outside_the_candidates_are_ignored() -> None:
    cands = [Sentence(i, 1, "", f"sentence number {i}") for i in (1, 2, 3)]
    assert parse_choice('{"sentences": [2, 9, 2, true]}', cands) == [cands[1]]
    assert parse_choice("not json", cands) == []
    assert parse_choice('{"sentences": "2"}', cands) == []


def test_nested_fences_in_lab_pages_do_not_make_code_comments_headings() -> None:
    # A rendered marimo cell: a ```python fence whose string holds a ```bash block.
    page = ("# Lab 9\n\nIntro text.\n\n```python\nmo.md(f\"\"\"\nRun it:\n\n```bash\n"
            "workbench probe x\n# and in production, each probe on its own schedule:\n"
            "workbench probe x --watch\n```\n\"\"\")\n```\n\n## 2. Next section\n\n"
            "Body of the next section.\n")
    assert [t for _, _, t in headings(page)] == ["Lab 9", "2. Next section"]
    chunks = chunk_text(page)
    assert {c.heading for c in chunks} <= {"Lab 9", "Lab 9 > 2. Next section"}
    assert any(c.heading == "Lab 9 > 2. Next section" and "Body of the next" in c.text
               for c in chunks)
    # A paragraph of "# ..." lines inside a fence is code, not a heading to carry along.
    code_only = "# Guide\n\nText.\n\n```python\n# step one\n\n# step two\nrun()\n```\n"
    assert [t for _, _, t in headings(code_only)] == ["Guide"]
    assert all(c.heading == "Guide" for c in chunk_text(code_only))


# -- strategy choice --------------------------------------------------------------------
def test_strategy_is_chosen_by_model_size_and_overridable(
        make_gateway: Callable[..., Gateway]) -> None:
    gw = make_gateway(providers={"fake": FakeProvider()}, models=FAKE)
    tiny, big = gw.spec("smollm2-135m"), gw.spec("fake-model")
    assert is_tiny(tiny) and not is_tiny(big)
    assert resolve(gw, tiny) == "extractive" and resolve(gw, big) == "free"
    assert resolve(gw, big, "constrained") == "constrained"
    with pytest.raises(BadRequest, match="unknown answer strategy"):
        resolve(gw, big, "poetic")
    forced = make_gateway(providers={"fake": FakeProvider()}, models=FAKE,
                          answer_strategy="constrained")
    assert resolve(forced, forced.spec("fake-model")) == "constrained"
    env = load_settings(environ={"WORKBENCH_ANSWER_STRATEGY": "free"})
    assert env.answer_strategy == "free"
    with pytest.raises(Exception, match="answer_strategy"):
        load_settings(environ={"WORKBENCH_ANSWER_STRATEGY": "poetic"})
    params = generation_params(ModelSpec(name="t", provider="embedded"), 256)
    assert params["max_tokens"] <= 96 and params["frequency_penalty"] > 0


# -- ask() with a fake model (the seams) ------------------------------------------------
@pytest.mark.embedded  # the real ONNX embedder does retrieval and evidence scoring
def test_fabricated_free_answer_falls_back_to_cited_evidence(
        make_gateway: Callable[..., Gateway], corpus: Path) -> None:
    liar = FakeProvider(text="The lamp is powered by a nuclear reactor [9].")
    gw = make_gateway(providers={"fake": liar}, models=FAKE, chat_model="fake-model")
    ingest(gw, [corpus], progress=False)
    ans = ask(gw, FOG)
    assert ans.strategy == "free" and ans.answered_by == "extractive"
    assert ans.draft == liar.text and "do not exist" in ans.check
    assert "nuclear" not in ans.answer and "thirty seconds" in ans.answer
    cited = citations(ans.answer)
    assert cited and all(1 <= n <= len(ans.sources) for n in cited)
    assert [s.cited for s in ans.sources] == [s.n in cited for s in ans.sources]
    assert ans.sources[cited[0] - 1].source.endswith("guide.md")
    # The same answer unverified (the baseline) keeps the fabrication.
    raw = ask(gw, FOG, verify=False)
    assert raw.answer == liar.text and raw.answered_by == "free"


@pytest.mark.embedded
def test_honest_free_answer_passes_the_verifier_unchanged(
        make_gateway: Callable[..., Gateway], corpus: Path) -> None:
    honest = FakeProvider(text="The foghorn sounds every thirty seconds [1].")
    gw = make_gateway(providers={"fake": honest}, models=FAKE, chat_model="fake-model")
    ingest(gw, [corpus], progress=False)
    ans = ask(gw, FOG)
    assert ans.answer == honest.text and ans.answered_by == "free" and not ans.check
    assert honest.calls[-1]["max_tokens"] == 128 and "frequency_penalty" not in honest.calls[-1]


@pytest.mark.embedded
def test_asking_needs_the_chat_model_whatever_the_strategy(gw: Gateway, corpus: Path) -> None:
    ingest(gw, [corpus], progress=False)
    _, secret = gw.policy.create_key(team="readers", models=["minilm-l6-v2"], actor="test")
    with pytest.raises(PermissionDenied):
        ask(gw.as_key(secret), FOG, strategy="extractive")


# -- the real embedded model ------------------------------------------------------------
@pytest.mark.embedded
@pytest.mark.parametrize("strategy", ["extractive", "constrained"])
def test_small_model_strategies_give_a_cited_answer(gw: Gateway, corpus: Path,
                                                    strategy: str) -> None:
    ingest(gw, [corpus], progress=False)
    ans = ask(gw, FOG, strategy=strategy)
    assert ans.grounded and ans.strategy == strategy
    assert "thirty seconds" in ans.answer, ans.answer
    cited = citations(ans.answer)
    assert cited and all(ans.sources[n - 1].source.endswith("guide.md") for n in cited)
    if strategy == "constrained":
        assert ans.model == "smollm2-135m" and ans.usage.get("completion_tokens", 0) > 0
    off = ask(gw, "Who won the 1998 football world cup final?", strategy=strategy)
    assert off.answer == IDK and not off.grounded


@pytest.mark.embedded
@pytest.mark.parametrize("strategy", ["extractive", "constrained"])
def test_composed_answers_still_stream(gw: Gateway, corpus: Path, strategy: str) -> None:
    from workbench.retrieval.collections import DEFAULT_COLLECTION
    from workbench.service.pipeline import AskOptions, run_ask

    ingest(gw, [corpus], progress=False)
    gw.settings.answer_strategy = strategy  # type: ignore[assignment]
    pieces: list[str] = []
    ans = run_ask(gw, FOG, AskOptions(collection=DEFAULT_COLLECTION),
                  trace_id="a" * 32, on_token=pieces.append)
    assert pieces and "".join(pieces) == ans.answer
    assert not any(p.lstrip().startswith("{") for p in pieces)  # no raw JSON streamed


@pytest.mark.embedded
@pytest.mark.slow
def test_tour_answers_its_own_question_with_a_citation(gw: Gateway) -> None:
    from workbench.retrieval.tour import TOUR_QUESTION, TOUR_SOURCE, tour_step

    step = tour_step(gw, collection="tour-docs")
    assert step["ok"]
    data: dict[str, Any] = step["data"]["answer"]
    assert data["question"] == TOUR_QUESTION and data["grounded"]
    answer = data["answer"]
    # The profile setting: the env var or the workbench.toml key.
    assert re.search(r"WORKBENCH_PROFILE|profile\s*=", answer), answer
    cited = citations(answer)
    cited_sources = [s["source"] for s in data["sources"] if s["n"] in cited]
    assert any(src.endswith(TOUR_SOURCE) for src in cited_sources), (answer, cited_sources)
    ingested = {Path(d["source"]).parts[-2] for d in data["sources"]}
    assert not ingested & {"reference", "labs"}


@pytest.mark.embedded
def test_headings_are_searchable_words(gw: Gateway, tmp_path: Path) -> None:
    from workbench.retrieval.chunking import ChunkingConfig
    from workbench.retrieval.search import search

    doc = tmp_path / "kb" / "ops.md"
    doc.parent.mkdir()
    # Small chunks: the section's second chunk does not repeat its heading in its text.
    doc.write_text("# Ops\n\n## Disk defragmentation\n\nThe archive volume holds ten "
                   "years of scanned invoices, contracts and signed delivery notes from "
                   "every branch office.\n\nRun it monthly, on a Sunday night, when "
                   "nobody is scanning.\n", encoding="utf-8")
    ingest(gw, [doc.parent], collection="kb", progress=False,
           chunking=ChunkingConfig(max_tokens=24))
    hits = search(gw, "defragmentation", collection="kb", k=5, mode="fts")
    second = [h for h in hits if "monthly" in h.text]
    assert second and "defragmentation" not in second[0].text.lower()
    assert second[0].heading.endswith("Disk defragmentation")
