"""Retrieval on object storage, for real: collections on a SeaweedFS S3 server started for
the session (tests/s3_server.py), credentials read from variables named in the settings.

What is checked against the same operations on local disk: ingest, incremental re-ingest,
every search mode, index build, prune; a `workbench ingest` killed with SIGKILL mid-way and
resumed; two ingest processes writing one collection at once; and the errors a deployment
meets first (missing bucket, refused credentials, unreachable endpoint).

What LanceDB 0.40 guarantees with two writers on this store (and why the collection schema
declares ``id`` its primary key) is pinned by ``test_concurrent_writers_*`` below.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_retrieval_cli import big_corpus

from tests.s3_server import KEY_ID_ENV, SECRET_ENV, S3Server
from tests.servers import free_port
from workbench.cli import main
from workbench.config import load_settings
from workbench.errors import ConfigError
from workbench.models.gateway import Gateway
from workbench.retrieval import Collections, chunk_text, ingest, search
from workbench.retrieval.cache import EmbeddingCache
from workbench.retrieval.collections import PRIMARY_KEY, CollectionMeta, row_schema
from workbench.retrieval.ingest import doc_id_for, maintain_indexes
from workbench.retrieval.search import MODES
from workbench.retrieval.storage import ObjectStoreError, explain, storage_options
from workbench.store import Store

pytestmark = [pytest.mark.s3, pytest.mark.embedded]
HERE = Path(__file__).resolve().parent


# -- settings: credentials only ever come from the environment ---------------------------

def test_credentials_are_refused_as_values_in_files(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzzSECRET"
    (tmp_path / "workbench.toml").write_text(
        '[workbench]\nlancedb_uri = "s3://b/db"\n'
        f'lancedb_storage_options = {{ aws_secret_access_key = "{secret}" }}\n')
    with pytest.raises(ConfigError) as exc:
        load_settings()
    assert "aws_secret_access_key" in exc.value.message
    assert "lancedb_storage_env" in exc.value.message and secret not in exc.value.message
    (tmp_path / "workbench.toml").unlink()
    for option in ("aws_access_key_id", "AWS_SESSION_TOKEN", "azure_storage_account_key",
                   "azure_storage_sas_key", "google_service_account_key", "azure_client_secret"):
        with pytest.raises(ConfigError, match=option):
            load_settings(lancedb_storage_options={option: "value"})
    # A value where a variable NAME belongs (a pasted secret) is refused, not echoed.
    with pytest.raises(ConfigError) as exc:
        load_settings(lancedb_storage_env={"aws_secret_access_key": secret})
    assert "aws_secret_access_key" in exc.value.message and secret not in exc.value.message
    # Structured settings live in the file only: a WORKBENCH_ variable cannot smuggle one in.
    monkeypatch.setenv("WORKBENCH_LANCEDB_STORAGE_OPTIONS", "aws_secret_access_key=x")
    assert load_settings().lancedb_storage_options == {}


def test_storage_options_read_the_named_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings(
        lancedb_uri="s3://b/db",
        lancedb_storage_options={"AWS_Region": "eu-west-1", "allow_http": "false"},
        lancedb_storage_env={"aws_access_key_id": "TEAM_KEY_ID",
                             "aws_secret_access_key": "TEAM_SECRET"})
    monkeypatch.setenv("TEAM_KEY_ID", "AKIAEXAMPLEKEYID")
    monkeypatch.delenv("TEAM_SECRET", raising=False)
    with pytest.raises(ConfigError) as exc:
        storage_options(settings)
    assert "TEAM_SECRET (for aws_secret_access_key)" in exc.value.message
    assert "AKIAEXAMPLEKEYID" not in exc.value.message
    monkeypatch.setenv("TEAM_SECRET", "s3cr3t-value")
    assert storage_options(settings) == {
        "aws_region": "eu-west-1", "allow_http": "false", "aws_access_key_id": "AKIAEXAMPLEKEYID",
        "aws_secret_access_key": "s3cr3t-value"}
    assert "s3cr3t" not in repr(Collections.for_settings(settings))


@settings(max_examples=60, deadline=None)
@given(secret=st.from_regex(r"[A-Za-z0-9/+]{16,40}", fullmatch=True),
       code=st.sampled_from(["NoSuchBucket", "SignatureDoesNotMatch", "InvalidAccessKeyId",
                             "AccessDenied", "ConnectError", "dns error", "BadScheme"]))
def test_explained_errors_never_carry_the_raw_reply(secret: str, code: str) -> None:
    # An S3 SignatureDoesNotMatch reply echoes the access key id and the signed string:
    # the explanation is built from the URI, the endpoint and the error code only.
    raw = ValueError(f"Invalid input, <Code>{code}</Code><AWSAccessKeyId>{secret}"
                     f"</AWSAccessKeyId><StringToSign>{secret}</StringToSign> {code}")
    err = explain(raw, "s3://bucket/db", {"aws_endpoint": "http://alice:hunter2@store:9000"})
    assert isinstance(err, ObjectStoreError) and err.status == 503
    assert secret not in err.message and "hunter2" not in err.message
    assert "http://store:9000" in err.message  # the endpoint, without its userinfo
    assert explain(raw, "/local/dir", {}) is None  # local paths are not object stores
    assert explain(ValueError("some other failure"), "s3://bucket/db", {}) is None


# -- the collection lifecycle on S3, compared with the same steps on local disk -----------

def _rows(table: Any) -> dict[str, tuple[Any, ...]]:
    got = table.search().select(["id", "doc_id", "chunk_hash", "text", "vector"]).limit(
        None).to_list()
    assert len({r["id"] for r in got}) == len(got), "duplicated chunk ids"
    return {r["id"]: (r["doc_id"], r["chunk_hash"], r["text"], tuple(r["vector"])) for r in got}


def _objects(s3: S3Server, uri: str) -> list[str]:
    from pyarrow.fs import FileSelector

    infos = s3.filesystem().get_file_info(FileSelector(uri.removeprefix("s3://"),
                                                       recursive=True, allow_not_found=True))
    return [i.path for i in infos]


def test_ingest_reingest_search_index_and_prune_on_s3(
        make_gateway: Callable[..., Gateway], s3_server: S3Server, corpus: Path,
        tmp_path: Path) -> None:
    uri = s3_server.uri()
    gw = make_gateway(**s3_server.settings(uri))
    local = make_gateway()  # same SQL store (embedding cache), collections on local disk

    first = ingest(gw, [corpus], progress=False)
    assert first.created and first.ok and first.total_chunks > 0
    assert not (tmp_path / ".workbench" / "lancedb").exists()  # nothing went to local disk
    stored = _objects(s3_server, uri)
    assert any("/docs.lance/data/" in k for k in stored), stored  # the rows are in the bucket
    assert any("/docs.lance/_versions/" in k for k in stored), stored
    ingest(local, [corpus], progress=False)

    def s3_table() -> Any:
        return Collections.for_settings(gw.settings).open("docs")

    local_rows = _rows(Collections.for_settings(local.settings).open("docs"))
    assert _rows(s3_table()) == local_rows  # same chunks, same vectors

    # -- incremental re-ingest: an unchanged corpus commits nothing ------------------------
    version = s3_table().version
    again = ingest(gw, [corpus], progress=False)
    assert (again.unchanged, again.added, again.updated, again.chunks_written) == (
        len(first.added), [], [], 0)
    assert s3_table().version == version

    guide = corpus / "guide.md"
    guide.write_text("# Lighthouse keeping\n\n## Brass\n\nThe keeper polishes the brass "
                     "fittings of the lantern room every Sunday morning.\n", encoding="utf-8")
    before = _rows(s3_table())
    changed = ingest(gw, [corpus], progress=False)
    assert changed.updated == [str(guide)] and not changed.added and not changed.removed
    after = _rows(s3_table())
    touched = {i for i in before.keys() | after.keys() if before.get(i) != after.get(i)}
    assert touched and {(after.get(i) or before[i])[0] for i in touched} == {doc_id_for(guide)}
    ingest(local, [corpus], progress=False)
    assert _rows(s3_table()) == _rows(Collections.for_settings(local.settings).open("docs"))

    # -- every search mode answers on S3 exactly as on local disk ---------------------------
    for mode in MODES:
        for query in ("who polishes the brass on Sunday", "sourdough starter flour",
                      "magma pressure eruption"):
            on_s3 = search(gw, query, mode=mode, k=3)  # type: ignore[arg-type]
            on_disk = search(local, query, mode=mode, k=3)  # type: ignore[arg-type]
            assert [h.id for h in on_s3] == [h.id for h in on_disk], (mode, query)
            assert [h.score for h in on_s3] == pytest.approx([h.score for h in on_disk])
    assert search(gw, "polishes the brass", mode="fts", k=1)[0].source == str(guide)

    # -- index build on S3: FTS (built by ingest) + the vector index --------------------------
    built = maintain_indexes(s3_table(), vector_index_min_rows=1)
    assert built == ["IVF_HNSW_SQ(vector, cosine)"]
    indexes = {i.index_type for i in s3_table().list_indices()}
    assert {"FTS", "IvfHnswSq"} <= indexes, indexes
    assert any("/docs.lance/_indices/" in k for k in _objects(s3_server, uri))
    top = search(gw, "who polishes the brass on Sunday", mode="vector", k=1)[0]
    assert top.source == str(guide) and top.similarity is not None

    # -- prune: a deleted file's chunks leave the collection -----------------------------------
    bread = corpus / "notes" / "bread.txt"
    bread.unlink()
    pruned = ingest(gw, [corpus], prune=True, progress=False)
    assert pruned.removed == [str(bread)]
    rows = _rows(s3_table())
    assert doc_id_for(bread) not in {doc for doc, *_ in rows.values()}
    assert all(h.source != str(bread) for h in search(gw, "sourdough starter", mode="fts"))
    stats = Collections.for_settings(gw.settings).stats("docs")
    assert stats["uri"] == uri and stats["chunks"] == len(rows) and stats["size_bytes"] > 0


# -- kill -9 mid-ingest, then resume ------------------------------------------------------

@pytest.mark.slow
def test_ingest_killed_with_sigkill_on_s3_resumes(tmp_path: Path, s3_server: S3Server,
                                                  make_gateway: Callable[..., Gateway]) -> None:
    uri = s3_server.uri()
    (tmp_path / "workbench.toml").write_text("[workbench]\n" + s3_server.toml(uri))
    files = big_corpus(tmp_path / "big", n_files=16)
    expected = {str(tmp_path / "big" / n): len(chunk_text(t)) for n, t in files.items()}
    settings = load_settings()
    cols = Collections.for_settings(settings)
    cache = EmbeddingCache(Store(settings.resolved_store_url))
    proc = subprocess.Popen(
        [sys.executable, "-m", "workbench", "ingest", str(tmp_path / "big"),
         "--commit-every", "2", "--batch-size", "2", "--no-progress"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    try:
        while True:  # something committed to S3 AND more embedded: kill it there
            assert proc.poll() is None, "ingest ended before the kill: use a bigger corpus"
            assert time.monotonic() < deadline
            try:
                committed = cols.open("docs").count_rows() if cols.exists("docs") else 0
            except (ValueError, OSError):  # listed while the ingester is still creating it
                committed = 0
            if committed and cache.count() > committed:
                break
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL

    def per_source() -> Counter[str]:
        got = Collections.for_settings(load_settings()).open("docs").search().select(
            ["id", "source"]).limit(None).to_list()
        assert len({r["id"] for r in got}) == len(got)  # no duplicated rows
        return Counter(r["source"] for r in got)

    partial = per_source()
    assert 0 < len(partial) < len(files), partial  # the kill landed mid-ingest
    assert all(partial[s] == expected[s] for s in partial), (partial, expected)  # whole docs
    cached = cache.count()
    report = ingest(make_gateway(), [tmp_path / "big"], progress=False)
    assert report.unchanged == len(partial) and len(report.added) == len(files) - len(partial)
    assert report.chunks_embedded == sum(expected.values()) - cached  # nothing embedded twice
    assert per_source() == Counter(expected)


# -- two writers at once -------------------------------------------------------------------

def _line(proc: subprocess.Popen[str]) -> str:
    assert proc.stdout is not None
    return proc.stdout.readline()


def _race(s3: S3Server, uri: str, names: tuple[str, ...], rounds: int
          ) -> dict[str, list[tuple[dict[str, Any], ...]]]:
    """Two worker processes commit the same new rows each round; their MergeResults."""
    args = [sys.executable, str(HERE / "merge_race_worker.py"), uri,
            json.dumps(s3.plain_options), json.dumps(s3.credential_env)]
    workers = [subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
               for _ in range(2)]
    try:
        for w in workers:
            assert _line(w).strip() == "ready"
        results: dict[str, list[tuple[dict[str, Any], ...]]] = {n: [] for n in names}
        for name in names:
            for r in range(rounds):
                for w in workers:  # both go at once: each is already connected and warm
                    assert w.stdin is not None
                    w.stdin.write(f"{name} {r}\n")
                    w.stdin.flush()
                results[name].append(tuple(json.loads(_line(w)) for w in workers))
        return results
    finally:
        for w in workers:
            assert w.stdin is not None
            w.stdin.close()
            w.wait(timeout=60)


def _race_table(s3: S3Server, uri: str, name: str, primary_key: bool) -> Collections:
    import pyarrow as pa

    meta = CollectionMeta(name=name, embed_model="test", dim=4, chunking={})
    schema = row_schema(meta)
    if not primary_key:
        schema = schema.set(0, schema.field(0).remove_metadata())
    cols = Collections(uri, s3.storage_options())
    seed = {"id": "seed", "doc_id": "seed", "source": "s", "path": "/s", "text": "seed",
            "chunk_hash": "h", "doc_hash": "h", "vector": [0.0] * 4}
    cols.db.create_table(name, data=pa.Table.from_pylist([seed], schema=schema))
    return cols


@pytest.mark.slow
def test_concurrent_writers_of_the_same_new_chunks_never_duplicate_them(
        s3_server: S3Server) -> None:
    """LanceDB commits on S3 with conditional writes (PUT If-None-Match, which SeaweedFS
    honours) and retries a commit that lost the race. A merge that only INSERTS rows touches
    no existing fragment, so two of them inserting the same new ids do not conflict and
    both land, unless the schema declares ``id`` the primary key: then the loser is retried
    against the winner's version and updates the rows instead. Both halves are shown."""
    uri = s3_server.uri()
    cols = _race_table(s3_server, uri, "with_pk", primary_key=True)
    assert PRIMARY_KEY in (cols.open("with_pk").schema.field("id").metadata or {})
    _race_table(s3_server, uri, "without_pk", primary_key=False)
    rounds = 5
    results = _race(s3_server, uri, ("with_pk", "without_pk"), rounds)
    counts: dict[str, Counter[str]] = {}
    for name in results:
        table = Collections(uri, s3_server.storage_options()).db.open_table(name)
        counts[name] = Counter(table.search().select(["id"]).limit(None).to_arrow()
                               .column("id").to_pylist())

    # With the primary key: every round's rows exist exactly once, whoever won...
    assert set(counts["with_pk"].values()) == {1}
    assert len(counts["with_pk"]) == 1 + rounds * 4
    for a, b in results["with_pk"]:
        assert a["inserted"] + b["inserted"] == 4, (a, b)
    # ...and the race really happened: commits conflicted and were retried.
    retried = [pair for pair in results["with_pk"] if max(p["attempts"] for p in pair) > 1]
    assert retried, results["with_pk"]
    # Without it: in every round where both writers planned on the same version, both
    # inserted, and the rows are there twice.
    both = [a["round"] for a, b in results["without_pk"] if a["inserted"] and b["inserted"]]
    assert both, results["without_pk"]  # the race happened here too
    doubled = {i.split(":")[0] for i, n in counts["without_pk"].items() if n == 2}
    assert doubled == {f"race{r}" for r in both}


@pytest.mark.slow
def test_two_ingest_processes_write_one_s3_collection_at_once(
        tmp_path: Path, s3_server: S3Server, make_gateway: Callable[..., Gateway]) -> None:
    uri = s3_server.uri()
    (tmp_path / "workbench.toml").write_text("[workbench]\n" + s3_server.toml(uri))
    shared = big_corpus(tmp_path / "shared", n_files=4)
    expected = {str(tmp_path / "shared" / n): len(chunk_text(t)) for n, t in shared.items()}
    for part in ("a", "b"):
        own = big_corpus(tmp_path / part, n_files=2)
        expected |= {str(tmp_path / part / n): len(chunk_text(t)) for n, t in own.items()}
    # Two machines: each has its own SQL store (so each embeds everything itself) and
    # commits every 2 chunks, so the commits of the two processes interleave.
    procs = []
    for part in ("a", "b"):
        env = {**os.environ, "WORKBENCH_DATA_DIR": str(tmp_path / f"host-{part}")}
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "workbench", "ingest", str(tmp_path / "shared"),
             str(tmp_path / part), "--commit-every", "2", "--batch-size", "2", "--no-progress",
             "--json"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
    reports = [json.loads(out) for out, _ in outs]
    assert sum(r["created"] for r in reports) <= 1  # at most one created it, the other joined

    table = Collections.for_settings(load_settings()).open("docs")
    got = table.search().select(["id", "source"]).limit(None).to_list()
    assert len({r["id"] for r in got}) == len(got)  # no chunk twice
    assert Counter(r["source"] for r in got) == Counter(expected)  # every document, whole
    # Both wrote the same content for the shared files: a third ingest has nothing to do.
    paths = [tmp_path / "shared", tmp_path / "a", tmp_path / "b"]
    again = ingest(make_gateway(), paths, progress=False)
    assert again.unchanged == len(expected) and again.chunks_written == 0


# -- errors a deployment meets first --------------------------------------------------------

def _cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
         *args: str) -> tuple[int, str]:
    """The real entry point (``main``: how user errors are printed), in-process; the
    output with its line wrapping undone."""
    monkeypatch.setattr(sys, "argv", ["workbench", *args])
    with pytest.raises(SystemExit) as exc:
        main()
    out = capsys.readouterr()
    return int(exc.value.code or 0), " ".join((out.out + out.err).split())


def test_missing_bucket_bad_credentials_and_unreachable_endpoint_are_clear_errors(
        tmp_path: Path, s3_server: S3Server, corpus: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    def configure(uri: str, **plain: str) -> None:
        (tmp_path / "workbench.toml").write_text("[workbench]\n" + s3_server.toml(uri, **plain))

    secrets_ = (s3_server.secret_key, s3_server.access_key)

    configure("s3://no-such-bucket/db")
    code, out = _cli(monkeypatch, capsys, "ingest", str(corpus))
    assert code == 1 and "bucket 'no-such-bucket' does not exist" in out, out
    assert s3_server.endpoint in out and "Traceback" not in out
    from pyarrow.fs import FileType

    assert s3_server.filesystem().get_file_info("no-such-bucket").type == FileType.NotFound

    configure(s3_server.uri())
    monkeypatch.setenv(SECRET_ENV, "not-the-secret-" + s3_server.secret_key[:6])
    code, out = _cli(monkeypatch, capsys, "search", "lighthouse")
    assert code == 1 and "refused the credentials" in out, out
    assert "SignatureDoesNotMatch" in out and "Traceback" not in out
    assert not any(s in out for s in (*secrets_, "not-the-secret-")), out
    monkeypatch.setenv(KEY_ID_ENV, "nobody")
    code, out = _cli(monkeypatch, capsys, "collections")
    assert code == 1 and "refused the credentials" in out and "InvalidAccessKeyId" in out
    monkeypatch.delenv(KEY_ID_ENV)
    code, out = _cli(monkeypatch, capsys, "collections")
    assert code == 1 and f"{KEY_ID_ENV} (for aws_access_key_id)" in out, out
    monkeypatch.setenv(KEY_ID_ENV, s3_server.access_key)
    monkeypatch.setenv(SECRET_ENV, s3_server.secret_key)

    closed = f"http://127.0.0.1:{free_port()}"
    configure(s3_server.uri(), aws_endpoint=closed)
    code, out = _cli(monkeypatch, capsys, "search", "lighthouse")
    assert code == 1 and f"cannot reach the object store at {closed}" in out, out
    assert "Traceback" not in out

    configure(s3_server.uri(), allow_http="false")
    code, out = _cli(monkeypatch, capsys, "collections")
    assert code == 1 and "allow_http" in out and "Traceback" not in out, out

    configure(s3_server.uri())  # and with everything right, the same commands work
    code, out = _cli(monkeypatch, capsys, "ingest", str(corpus))
    assert code == 0, out
    assert not any(s in out for s in secrets_)
