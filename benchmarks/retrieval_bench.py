"""Retrieval: ingest throughput, re-ingest cost, query latency by size and mode, and
retrieval quality against a plain BM25 baseline, all in one run.

Corpus (nobody here wrote it): the CPython standard library's own documentation, i.e. the
module docstrings plus the first paragraph of every public class/function docstring of
the local Python install's ``Lib/*.py`` and ``Lib/<pkg>/*.py`` (``encodings``, tests,
IDLE and tkinter left out), one Markdown file per module. Labelled set: the
``QUESTIONS`` below, written as a user would ask, each with the module(s) whose
documentation answers it.

1. ingest: the pipeline (read, chunk, Gateway embed + ledger, embedding cache, LanceDB
   commits, FTS index) vs the raw ONNX embedder on the same chunk texts, interleaved
   part by part because the machine is shared; wall and process CPU time. Goal:
   overhead under 10%.
2. re-ingest of the unchanged corpus (goal: ~zero embedding calls, seconds), and an
   update of one file.
3. query latency p50/p95 per mode at 2k/20k/100k chunks, including the query embedding
   through the Gateway (and its ledger write). Tables are SYNTHETIC: real chunk texts
   repeated, vectors = real chunk vectors + Gaussian noise, renormalised. Vector search is
   timed brute force and with the IVF_HNSW_SQ index (recall@10 vs brute force), which
   is how VECTOR_INDEX_MIN_ROWS was chosen.
4. quality: hit@5 and MRR@10 (document level: the first chunk from an expected module)
   for vector, FTS, hybrid and a plain Okapi BM25 (k1=1.5, b=0.75, lowercase word tokens,
   no stemming) over the same chunk texts. Also the top-1 cosine of on-topic vs
   off-topic questions, which sets ``ask()``'s "I don't know" threshold.

    .venv/bin/python benchmarks/retrieval_bench.py            # full run (~10-20 min)
    .venv/bin/python benchmarks/retrieval_bench.py --quick    # small, for the smoke test
"""

from __future__ import annotations

import argparse
import ast
import math
import re
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from _common import machine_note, percentile, print_table

import workbench
from workbench.retrieval import ChunkingConfig, Collections, Searcher, chunk_text, ingest
from workbench.retrieval.collections import CollectionMeta, row_schema
from workbench.retrieval.ingest import embed_text, embedding_batches, maintain_indexes
from workbench.retrieval.loaders import load_bytes

SKIP_PACKAGES = {"test", "idlelib", "turtledemo", "lib2to3", "tkinter", "ensurepip",
                 "distutils", "site-packages", "pydoc_data", "encodings", "unittest"}
MAX_DOC_CHARS = 6000

# question -> modules whose documentation answers it
QUESTIONS: list[tuple[str, set[str]]] = [
    ("How can I show the differences between two lists of text lines?", {"difflib"}),
    ("keep a list in sorted order while inserting new items", {"bisect"}),
    ("priority queue implemented with a binary heap", {"heapq"}),
    ("securely generate a random token for a password reset link", {"secrets"}),
    ("parse command line flags and options for my script", {"argparse", "optparse",
                                                            "getopt"}),
    ("compute an MD5 or SHA-1 fingerprint of some bytes", {"hashlib"}),
    ("verify a message with a keyed hash for authentication", {"hmac"}),
    ("save arbitrary Python objects to a file and load them back later", {"pickle",
                                                                         "shelve"}),
    ("copy a whole directory tree and delete folders recursively", {"shutil"}),
    ("match filenames against wildcard patterns like *.txt", {"fnmatch", "glob"}),
    ("a dictionary stored on disk that persists between runs", {"shelve", "dbm",
                                                                "dbm.dumb"}),
    ("start another program and read what it prints", {"subprocess"}),
    ("average, median and standard deviation of a list of numbers", {"statistics"}),
    ("exact rational number arithmetic with numerators and denominators", {"fractions"}),
    ("read settings from an INI style configuration file", {"configparser"}),
    ("create a temporary file that is deleted automatically", {"tempfile"}),
    ("send an email through a mail server", {"smtplib"}),
    ("download messages from a POP3 mailbox", {"poplib"}),
    ("read and write tar archives", {"tarfile"}),
    ("compress a file with gzip", {"gzip"}),
    ("encode binary data as base64 text", {"base64"}),
    ("generate universally unique identifiers", {"uuid"}),
    ("references to objects that do not keep them alive", {"weakref"}),
    ("make a deep copy of a nested data structure", {"copy"}),
    ("pretty print a large nested dictionary", {"pprint"}),
    ("wrap long paragraphs of text to a fixed width", {"textwrap"}),
    ("translate my program's messages into other languages", {"gettext"}),
    ("measure the execution time of a small code snippet", {"timeit"}),
    ("print or format the stack trace of an exception", {"traceback"}),
    ("define abstract base classes whose methods subclasses must implement", {"abc"}),
    ("cache the results of an expensive function call", {"functools"}),
    ("iterate over lines from several input files or standard input", {"fileinput"}),
    ("read and write WAV sound files", {"wave"}),
    ("split a URL into scheme, host and path", {"urllib.parse"}),
    ("a basic HTTP server that serves files from a directory", {"http.server"}),
    ("work with IPv4 and IPv6 addresses and networks", {"ipaddress"}),
    ("log to files that rotate when they get too big", {"logging.handlers"}),
    ("serialize data to and from JSON", {"json"}),
    ("an embedded SQL database stored in a single file", {"sqlite3"}),
    ("schedule events to run at specific times", {"sched"}),
    ("split a shell-like command string into arguments respecting quotes", {"shlex"}),
    ("guess the MIME type of a file from its name", {"mimetypes"}),
    ("open a web page in the user's browser", {"webbrowser"}),
    ("interactive source code debugger with breakpoints", {"pdb", "bdb"}),
    ("find which functions of my program take the most time", {"cProfile", "profile",
                                                               "pstats"}),
    ("parse and build email messages", {"email", "email.message", "email.parser"}),
    ("print a calendar for a whole year", {"calendar"}),
    ("read the files inside a zip archive", {"zipfile"}),
]
OFF_TOPIC = [
    "Who won the 1998 football world cup final?", "best recipe for banana pancakes",
    "how tall is mount everest", "symptoms of the common cold",
    "what is the capital city of Mongolia", "how do I train my puppy to sit",
    "lyrics of a famous Beatles song", "when did the Roman empire fall",
]
_STOP = frozenset(re.findall(r"\w+", "a an and are as at be by for from how i in is it my "
                             "of on or that the this to what when which with do does can"))


# -- corpus ------------------------------------------------------------------------------
def _assigned_doc(tree: ast.Module) -> str | None:
    """A module docstring assigned as `__doc__ = "..."` (hashlib does that)."""
    for node in tree.body:
        if (isinstance(node, ast.Assign) and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name) and node.targets[0].id == "__doc__"
                and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)):
            return node.value.value
    return None


def stdlib_docs(limit: int | None) -> dict[str, str]:
    lib = Path(sys.base_prefix) / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
    files = sorted(lib.glob("*.py")) + sorted(p for p in lib.glob("*/*.py")
                                              if p.parts[-2] not in SKIP_PACKAGES)
    docs: dict[str, str] = {}
    for path in files:
        parts = [x for x in path.relative_to(lib).with_suffix("").parts if x != "__init__"]
        if any(x.startswith("_") for x in parts) or parts[0] in ("this", "antigravity"):
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
        doc = ast.get_docstring(tree) or _assigned_doc(tree)
        if not doc:
            continue
        name = ".".join(parts)
        out = [f"# {name}\n\n{doc.strip()}"]
        for node in tree.body:
            if isinstance(node, ast.FunctionDef | ast.ClassDef) and not node.name.startswith("_"):
                nd = ast.get_docstring(node)
                if nd:
                    out.append(f"## {name}.{node.name}\n\n{nd.strip().split(chr(10) * 2)[0]}")
        text = "\n\n".join(out)
        if len(text) >= 100:
            docs[name] = text[:MAX_DOC_CHARS]
    if limit:
        wanted = {m for _, ms in QUESTIONS for m in ms}
        keep = [n for n in docs if n in wanted][:limit // 2]
        keep += [n for n in docs if n not in keep][:limit - len(keep)]
        docs = {n: docs[n] for n in keep}
    return docs


# -- helpers -----------------------------------------------------------------------------
def all_rows(table: Any, cols: list[str]) -> list[dict[str, Any]]:
    return list(table.search().select(cols).limit(None).to_list())


class BM25:
    """Plain Okapi BM25 over lowercase word tokens (the baseline)."""

    def __init__(self, texts: list[str], k1: float = 1.5, b: float = 0.75):
        self.docs = [Counter(self.tokens(t)) for t in texts]
        self.lens = [sum(d.values()) for d in self.docs]
        self.avg = sum(self.lens) / max(len(self.lens), 1)
        df: Counter[str] = Counter()
        for d in self.docs:
            df.update(d.keys())
        n = len(self.docs)
        self.idf = {w: math.log(1 + (n - f + 0.5) / (f + 0.5)) for w, f in df.items()}
        self.k1, self.b = k1, b

    @staticmethod
    def tokens(text: str) -> list[str]:
        return [w for w in re.findall(r"[a-z0-9]+", text.lower()) if w not in _STOP]

    def top(self, query: str, k: int) -> list[int]:
        q = [w for w in self.tokens(query) if w in self.idf]
        scores = []
        for i, d in enumerate(self.docs):
            s = 0.0
            for w in q:
                f = d.get(w, 0)
                if f:
                    s += self.idf[w] * f * (self.k1 + 1) / (
                        f + self.k1 * (1 - self.b + self.b * self.lens[i] / self.avg))
            scores.append(s)
        order = sorted(range(len(scores)), key=lambda i: -scores[i])
        return [i for i in order[:k] if scores[i] > 0]


def doc_rank(modules: list[str], expected: set[str], k: int = 10) -> int | None:
    for rank, m in enumerate(modules[:k], 1):
        if m in expected:
            return rank
    return None


def quality(ranked: dict[str, list[list[str]]], questions: list[tuple[str, set[str]]]
            ) -> list[list[Any]]:
    rows = []
    for name, lists in ranked.items():
        ranks = [doc_rank(mods, exp) for mods, (_, exp) in zip(lists, questions, strict=True)]
        hit5 = sum(1 for r in ranks if r is not None and r <= 5) / len(ranks)
        mrr = sum(1 / r for r in ranks if r is not None) / len(ranks)
        rows.append([name, hit5, mrr])
    return rows


# -- sections ----------------------------------------------------------------------------
def part_texts(files: list[Path]) -> list[str]:
    """The unique texts the pipeline will embed for these files (same functions)."""
    out: dict[str, None] = {}
    for f in files:
        doc = load_bytes(f.read_bytes(), f)
        for ch in chunk_text(doc.text, ChunkingConfig()):
            out[embed_text(doc.title, ch.heading, ch.text)] = None
    return list(out)


def section_ingest(gw: Any, corpus: Path, collection: str, parts: int) -> Any:
    """Pipeline vs raw embedder, interleaved part by part (raw first on even parts,
    pipeline first on odd ones) so both see the same machine load; wall and CPU time."""
    emb = gw.provider("embedded").embedder()
    emb.embed(["warm up the session"])
    # Importing lancedb/pyarrow costs seconds once per process: not per-chunk overhead.
    t = time.perf_counter()
    Collections.for_settings(gw.settings).names()
    from tqdm.auto import tqdm  # noqa: F401
    print(f"first use of LanceDB in this process (imports): {time.perf_counter() - t:.1f} s")
    files = sorted(corpus.glob("*.md"))
    # wall s, cpu s, texts
    totals = {"raw, same batches": [0.0, 0.0, 0], "pipeline": [0.0, 0.0, 0],
              "raw, naive doc order": [0.0, 0.0, 0]}
    calls = 0

    def run_raw(texts: list[str], sort: bool) -> None:
        key = "raw, same batches" if sort else "raw, naive doc order"
        w, c = time.perf_counter(), time.process_time()
        if sort:  # exactly the pipeline's batches: length-sorted within windows
            for batch in embedding_batches([(t, t) for t in texts], 32):
                emb.embed([t for _, t in batch])
        else:
            for i in range(0, len(texts), 32):
                emb.embed(texts[i:i + 32])
        totals[key][0] += time.perf_counter() - w
        totals[key][1] += time.process_time() - c
        totals[key][2] += len(texts)

    def run_pipeline(part: list[Path]) -> None:
        nonlocal calls
        w, c = time.perf_counter(), time.process_time()
        report = ingest(gw, part, collection=collection, progress=False)
        totals["pipeline"][0] += time.perf_counter() - w
        totals["pipeline"][1] += time.process_time() - c
        totals["pipeline"][2] += report.chunks_embedded
        calls += report.embed_calls

    for i in range(parts):
        part = files[i::parts]
        texts = part_texts(part)
        if i % 2 == 0:
            run_raw(texts, sort=True)
            run_pipeline(part)
        else:
            run_pipeline(part)
            run_raw(texts, sort=True)
        run_raw(texts, sort=False)
    rows = [[name, n, n / wall, n / cpu] for name, (wall, cpu, n) in totals.items()]
    print_table(f"1. ingest throughput: {len(files)} files in {parts} interleaved parts "
                "(same texts, same ONNX session)",
                ["path", "texts embedded", "per wall s", "per CPU s"], rows)
    (rw, rc, rn), (pw, pc, pn) = totals["raw, same batches"], totals["pipeline"]
    nw, nc, nn = totals["raw, naive doc order"]
    print(f"pipeline overhead vs raw embedder: {((pw / pn) / (rw / rn) - 1) * 100:.1f}% "
          f"wall, {((pc / pn) / (rc / rn) - 1) * 100:.1f}% CPU ({calls} Gateway embed "
          f"calls; pipeline = read, chunk, embed via Gateway + ledger, cache, commit, index)")
    print(f"length-sorted batches vs naive doc-order batches: {(nc / nn) / (rc / rn):.2f}x "
          "less CPU per text")

    again = ingest(gw, [corpus], collection=collection, progress=False)
    one = files[0]
    one.write_text(one.read_text() + "\n\n## Added section\n\nA new paragraph.\n")
    touched = ingest(gw, [corpus], collection=collection, progress=False)
    print_table("2. re-ingest", ["run", "seconds", "embed calls", "chunks embedded",
                                 "unchanged files"],
                [["unchanged corpus", again.seconds, again.embed_calls, again.chunks_embedded,
                  again.unchanged],
                 ["one file changed", touched.seconds, touched.embed_calls,
                  touched.chunks_embedded, touched.unchanged]])
    return Collections.for_settings(gw.settings).open(collection)


def synthetic_vectors(base: list[dict[str, Any]], n: int, rng: np.random.Generator
                      ) -> tuple[np.ndarray, np.ndarray]:
    """(base row of each synthetic row, its vector): the base row's real vector + noise."""
    vecs = np.array([r["vector"] for r in base], dtype=np.float32)
    idx = np.arange(n) % len(base)
    noisy = vecs[idx] + rng.normal(scale=0.6 / math.sqrt(vecs.shape[1]),
                                   size=(n, vecs.shape[1])).astype(np.float32)
    noisy /= np.linalg.norm(noisy, axis=1, keepdims=True)
    return idx, noisy


def synthetic_meta(name: str, dim: int) -> CollectionMeta:
    return CollectionMeta(name=name, embed_model="minilm-l6-v2", dim=dim,
                          chunking={"strategy": "markdown", "max_tokens": 200, "overlap": 32})


def synthetic_batch(base: list[dict[str, Any]], idx: np.ndarray, noisy: np.ndarray,
                    start: int, stop: int, meta: CollectionMeta) -> Any:
    """Rows ``start:stop`` of a synthetic table, one chunk per document, as a pa.Table."""
    import pyarrow as pa

    return pa.table({
        "id": [f"s{i}:0" for i in range(start, stop)],
        "doc_id": [f"s{i}" for i in range(start, stop)],
        "source": [base[j]["source"] for j in idx[start:stop]],
        "path": [base[j]["source"] for j in idx[start:stop]],
        "title": [base[j]["title"] for j in idx[start:stop]],
        "heading": [base[j]["heading"] for j in idx[start:stop]],
        "doc_type": ["md"] * (stop - start),
        "chunk_index": pa.array([0] * (stop - start), pa.int32()),
        "start": pa.array([0] * (stop - start), pa.int32()),
        "end": pa.array([0] * (stop - start), pa.int32()),
        "page": pa.array([None] * (stop - start), pa.int32()),
        "n_tokens": pa.array([0] * (stop - start), pa.int32()),
        "text": [base[j]["text"] for j in idx[start:stop]],
        "chunk_hash": [str(i) for i in range(start, stop)],
        "doc_hash": [str(i) for i in range(start, stop)],
        "ingested_at": [0.0] * (stop - start),
        "vector": pa.FixedSizeListArray.from_arrays(
            pa.array(noisy[start:stop].reshape(-1)), noisy.shape[1]),
    }, schema=row_schema(meta))


def synthetic_table(gw: Any, name: str, n: int, base: list[dict[str, Any]],
                    rng: np.random.Generator) -> Any:
    idx, noisy = synthetic_vectors(base, n, rng)
    meta = synthetic_meta(name, noisy.shape[1])
    cols = Collections.for_settings(gw.settings)
    table = None
    for start in range(0, n, 20_000):
        batch = synthetic_batch(base, idx, noisy, start, min(n, start + 20_000), meta)
        if table is None:
            table = cols.create(meta, batch)
        else:
            table.add(batch)
    maintain_indexes(table, vector_index_min_rows=10**12)  # FTS only, vector brute force
    return table


def timed(s: Searcher, mode: str, queries: list[str]) -> list[float]:
    out = []
    for q in queries:
        t = time.perf_counter()
        s.search(q, k=5, mode=mode)  # type: ignore[arg-type]
        out.append((time.perf_counter() - t) * 1000)
    return out


def section_latency(gw: Any, base: list[dict[str, Any]], sizes: list[int],
                    queries: list[str]) -> None:
    rng = np.random.default_rng(0)
    rows = []
    notes = []
    for n in sizes:
        name = f"synthetic-{n}"
        table = synthetic_table(gw, name, n, base, rng)
        s = Searcher(gw, name)
        for q in queries[:3]:  # warm caches (index pages, tokenizer) before timing
            s.search(q, k=5, mode="hybrid")
        emb_lat = []
        for q in queries:
            t = time.perf_counter()
            s.embed_query(q)
            emb_lat.append((time.perf_counter() - t) * 1000)
        rows.append([f"{n:,}", "(query embedding only)", "-", percentile(emb_lat, 50),
                     percentile(emb_lat, 95)])
        for mode in ("vector", "fts", "hybrid"):
            lat = timed(s, mode, queries)
            rows.append([f"{n:,}", mode, "none" if mode != "fts" else "FTS",
                         percentile(lat, 50), percentile(lat, 95)])
        qvecs = [s.embed_query(q) for q in queries]
        truth = [[h.id for h in s.vector(v, 10, None)] for v in qvecs]
        from lancedb.index import HnswSq

        t = time.perf_counter()
        try:
            table.create_index("vector", config=HnswSq(distance_type="cosine"))
        except (ValueError, RuntimeError) as exc:
            notes.append(f"{n:,}: no vector index ({str(exc)[:80]})")
            continue
        build = time.perf_counter() - t
        s = Searcher(gw, name)
        got = [[h.id for h in s.vector(v, 10, None)] for v in qvecs]
        recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(truth, got, strict=True)])
        for mode in ("vector", "hybrid"):
            lat = timed(s, mode, queries)
            rows.append([f"{n:,}", mode, "IVF_HNSW_SQ", percentile(lat, 50),
                         percentile(lat, 95)])
        notes.append(f"{n:,}: IVF_HNSW_SQ build {build:.1f} s, recall@10 vs brute force "
                     f"{recall:.3f}")
        Collections.for_settings(gw.settings).drop(name)
    print_table("3. query latency incl. query embedding through the Gateway (ms; SYNTHETIC "
                "tables: real texts repeated, real vectors + noise)",
                ["chunks", "mode", "vector index", "p50 ms", "p95 ms"], rows)
    for note in notes:
        print("   " + note)


def section_quality(gw: Any, collection: str) -> None:
    s = Searcher(gw, collection)
    rows = all_rows(s.table, ["id", "title", "text", "source"])
    module_of = {r["id"]: Path(r["source"]).stem for r in rows}
    present = set(module_of.values())
    questions = [(q, exp) for q, exp in QUESTIONS if exp & present]  # --quick: a subset
    bm25 = BM25([r["text"] for r in rows])
    ranked: dict[str, list[list[str]]] = {m: [] for m in ("vector", "fts", "hybrid", "bm25")}

    def modules(ids: list[str]) -> list[str]:
        out: list[str] = []
        for i in ids:
            if module_of[i] not in out:
                out.append(module_of[i])
        return out

    top1_on = []
    for q, _ in questions:
        for mode in ("vector", "fts", "hybrid"):
            hits = s.search(q, k=20, mode=mode)  # type: ignore[arg-type]
            ranked[mode].append(modules([h.id for h in hits]))
            if mode == "vector":
                top1_on.append(hits[0].similarity)
        ranked["bm25"].append(modules([rows[i]["id"] for i in bm25.top(q, 20)]))
    top1_off = [s.search(q, k=1, mode="vector")[0].similarity for q in OFF_TOPIC]
    print_table(f"4. retrieval quality on {len(questions)} labelled questions over "
                f"{len(set(module_of.values()))} stdlib modules ({len(rows)} chunks)",
                ["method", "hit@5", "MRR@10"], quality(ranked, questions))
    print(f"   top-1 cosine, on-topic questions: min {min(top1_on):.3f} "
          f"median {np.median(top1_on):.3f}; off-topic: median {np.median(top1_off):.3f} "
          f"max {max(top1_off):.3f}")
    misses = [q for (q, exp), mods in zip(questions, ranked["hybrid"], strict=True)
              if doc_rank(mods, exp, 5) is None]
    print(f"   hybrid misses at 5: {misses}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small corpus, small tables")
    args = ap.parse_args()
    print(machine_note())
    # LanceDB may still be closing files in background threads when the run ends.
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as tmp:
        docs = stdlib_docs(limit=8 if args.quick else None)
        corpus = Path(tmp) / "stdlib-docs"
        corpus.mkdir()
        for name, text in docs.items():
            (corpus / f"{name}.md").write_text(text, encoding="utf-8")
        print(f"corpus: {len(docs)} modules, {sum(map(len, docs.values())):,} chars")
        gw = workbench.connect(data_dir=str(Path(tmp) / "data"))
        table = section_ingest(gw, corpus, "stdlib", parts=2 if args.quick else 6)
        base = all_rows(table, ["source", "title", "heading", "text", "vector"])
        queries = [q for q, _ in QUESTIONS][: 5 if args.quick else None]
        section_latency(gw, base, [500] if args.quick else [2000, 20_000, 100_000],
                        queries)
        section_quality(gw, "stdlib")
        gw.close()


if __name__ == "__main__":
    main()
