"""The retrieval CLI contract, and a real `workbench ingest` killed mid-way: the collection
stays consistent and the next run resumes without redoing finished work."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result
from retrieval_corpus import write_corpus
from typer.testing import CliRunner

from workbench.cli import app
from workbench.config import load_settings
from workbench.errors import BadRequest
from workbench.models.gateway import Gateway
from workbench.retrieval import Collections, chunk_text, ingest
from workbench.retrieval.cache import EmbeddingCache
from workbench.store import Store

pytestmark = pytest.mark.embedded


def wb(*args: str) -> subprocess.CompletedProcess[str]:
    """The real command in a subprocess (exit codes and error printing of main())."""
    return subprocess.run([sys.executable, "-m", "workbench", *args], capture_output=True,
                          text=True, timeout=600)


def cli(*args: str) -> Result:
    """The same commands in-process: no interpreter start-up per call."""
    return CliRunner().invoke(app, list(args))


def test_help_and_user_errors_in_the_real_command(corpus: Path) -> None:
    out = wb("--help")
    for cmd in ("ingest", "search", "ask", "collections"):
        assert cmd in out.stdout
    gone = wb("search", "fog", "--json")
    assert gone.returncode == 1 and "collection 'docs' does not exist" in gone.stderr
    assert "Traceback" not in gone.stderr


def test_ingest_search_collections_drop(corpus: Path) -> None:
    out = cli("ingest", str(corpus), "nope.md", "--json")
    assert out.exit_code == 1  # a path was missing ...
    report = json.loads(out.stdout)
    assert len(report["added"]) == 6 and report["missing_paths"] == ["nope.md"]  # ... rest in

    out = cli("ingest", str(corpus))
    assert out.exit_code == 0 and "6 unchanged" in out.stdout

    out = cli("search", "foghorn in fog", "--k", "2", "--json")
    assert out.exit_code == 0, out.output
    hits = json.loads(out.stdout)
    assert len(hits) == 2 and hits[0]["source"] == str(corpus / "guide.md")
    assert {"source", "text", "score"} <= set(hits[0]) and "foghorn" in hits[0]["text"]
    fts = json.loads(cli("search", "sourdough", "--mode", "fts", "--json").stdout)
    assert fts[0]["source"].endswith("bread.txt") and fts[0]["mode"] == "fts"
    pdf = json.loads(cli("search", "ice", "--doc-type", "pdf", "--json").stdout)
    assert {h["doc_type"] for h in pdf} == {"pdf"}

    listed = json.loads(cli("collections", "list", "--json").stdout)
    assert [c["name"] for c in listed] == ["docs"] and listed[0]["documents"] == 6
    assert "docs" in cli("collections").stdout  # no subcommand: list
    stats = json.loads(cli("collections", "stats", "docs", "--json").stdout)
    assert stats["embed_model"] == "minilm-l6-v2" and stats["chunking"]["strategy"] == "markdown"

    assert cli("collections", "drop", "docs", "--yes").exit_code == 0
    assert json.loads(cli("collections", "list", "--json").stdout) == []
    bad = cli("ingest", str(corpus), "--chunking", "words")
    assert isinstance(bad.exception, BadRequest) and "invalid chunking" in bad.exception.message


def test_ask_json_has_answer_sources_and_trace_id(corpus: Path) -> None:
    assert cli("ingest", str(corpus)).exit_code == 0
    out = cli("ask", "What does the keeper light at dusk?", "--json")
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    assert data["answer"] and len(data["trace_id"]) == 32
    assert data["sources"][0]["source"] == str(corpus / "guide.md")
    assert data["sources"][0]["n"] == 1


WORDS = ("river", "mountain", "copper", "lantern", "orchard", "harbor", "violet", "engine",
         "meadow", "falcon", "granite", "compass", "willow", "thunder", "saddle", "ember")


def big_corpus(root: Path, n_files: int = 30) -> dict[str, str]:
    rng = random.Random(7)
    files = {}
    for i in range(n_files):
        paras = [" ".join(rng.choice(WORDS) for _ in range(70)) + "." for _ in range(4)]
        files[f"doc{i:02d}.md"] = f"# Document {i}\n\n" + "\n\n".join(paras) + "\n"
    write_corpus(root, files)  # type: ignore[arg-type]
    return files


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT])
def test_killed_ingest_leaves_a_consistent_collection_and_resumes(
        tmp_path: Path, make_gateway: Callable[..., Gateway], sig: signal.Signals) -> None:
    # 120 docs: enough work left after the first commit for the signal to land mid-ingest
    # on a fast idle machine too.
    files = big_corpus(tmp_path / "big", n_files=120)
    expected = {str(tmp_path / "big" / name): len(chunk_text(text))
                for name, text in files.items()}
    settings = load_settings()
    cols = Collections.for_settings(settings)
    cache = EmbeddingCache(Store(settings.resolved_store_url))
    # Docs have 2 chunks; batches of 2 and commits every 6 chunks leave embedded but
    # uncommitted work most of the time: the state a kill should not waste.
    proc = subprocess.Popen(
        [sys.executable, "-m", "workbench", "ingest", str(tmp_path / "big"),
         "--commit-every", "6", "--batch-size", "2", "--no-progress"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        # A suite started in the background of a non-interactive shell inherits SIGINT as
        # ignored (and Python then keeps it ignored): give the child Ctrl-C back.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 300
    try:
        while True:  # wait until something is committed AND more is embedded, then stop
            assert proc.poll() is None, "ingest finished before it could be interrupted"
            assert time.monotonic() < deadline
            try:
                committed = cols.open("docs").count_rows() if cols.exists("docs") else 0
            except ValueError:  # listed while the ingester is still creating it
                committed = 0
            if committed and cache.count() > committed:
                break
            time.sleep(0.05)
        assert proc.poll() is None, "ingest finished before the signal: use a bigger corpus"
        os.kill(proc.pid, sig)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    if sig == signal.SIGINT:
        assert proc.returncode == 130 and "Traceback" not in err, err  # Ctrl-C: clean exit
    else:
        assert proc.returncode == -signal.SIGKILL, err

    def per_source() -> Counter[str]:
        table = Collections.for_settings(load_settings()).open("docs")
        got = table.search().select(["id", "source"]).limit(None).to_list()
        assert len({r["id"] for r in got}) == len(got)  # no duplicated rows
        return Counter(r["source"] for r in got)

    partial = per_source()
    assert 0 < len(partial) < len(files), partial  # the kill really happened mid-ingest
    assert all(partial[s] == expected[s] for s in partial), (partial, expected)  # whole docs
    cached = cache.count()  # every vector the killed run embedded (committed or not)

    report = ingest(make_gateway(), [tmp_path / "big"], progress=False)
    assert report.unchanged == len(partial)
    assert len(report.added) == len(files) - len(partial)
    # Nothing embedded before the kill is embedded again: uncommitted vectors come from
    # the cache, and only never-seen chunks go to the model.
    facts = (report, cached, sum(partial.values()), sum(expected.values()))
    assert report.cache_hits == cached - sum(partial.values()), facts
    assert report.chunks_embedded == sum(expected.values()) - cached, facts
    assert per_source() == Counter(expected)
