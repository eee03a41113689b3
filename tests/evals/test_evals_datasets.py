"""Golden datasets: format, per-line validation errors, versions, splits, creation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from workbench.errors import BadRequest, NotFound
from workbench.evals import datasets as d
from workbench.evals.datasets import DatasetError


def write(path: Path, lines: list[Any]) -> Path:
    path.write_text("\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n")
    return path


def test_the_shipped_sample_is_valid_and_versioned() -> None:
    ds = d.load("sample")
    assert ds.name == "workbench-docs" and ds.version == "1" and len(ds) >= 5
    assert all(s.reference and s.reference_contexts and s.answer for s in ds)
    assert ds.ref == f"workbench-docs@1#{ds.fingerprint}"
    assert d.load(d.sample_path()).fingerprint == ds.fingerprint


def test_every_problem_is_reported_with_its_line(tmp_path: Path) -> None:
    path = write(tmp_path / "bad.jsonl", [
        {"_golden": {"name": "qa", "version": "2"}},
        {"id": "a", "question": "ok?"},
        "{not json",
        {"id": "b", "reference": "no question"},
        {"id": "c", "question": "q", "refrence": "typo"},
        {"id": "a", "question": "dup"},
        {"id": "e", "question": "q", "checks": [{"containz": "x"}]},
        {"id": "f", "question": "   "},
        ["a", "list"],
    ])
    with pytest.raises(DatasetError) as err:
        d.load(path)
    lines = dict(err.value.errors)
    assert sorted(lines) == [3, 4, 5, 6, 7, 8, 9]
    assert "not valid JSON" in lines[3]
    assert "question: Field required" in lines[4]
    assert "refrence: unknown field" in lines[5]
    assert "duplicate id 'a' (first on line 2)" in lines[6]
    assert "checks[0]: unknown check type 'containz'" in lines[7]
    assert "question" in lines[8] and "blank" in lines[8]
    assert "expected a JSON object" in lines[9]
    assert "line 3:" in err.value.message and str(path) in err.value.message
    assert isinstance(err.value, BadRequest)  # the CLI prints it without a traceback


def test_header_rules_and_empty_files(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="unsupported format"):
        d.load(write(tmp_path / "v9.jsonl", [{"_golden": {"format": "workbench-golden/9"}},
                                              {"question": "q"}]))
    with pytest.raises(DatasetError, match="must be the first line"):
        d.load(write(tmp_path / "late.jsonl", [{"question": "q"}, {"_golden": {"name": "x"}}]))
    with pytest.raises(DatasetError, match="no rows"):
        d.load(write(tmp_path / "empty.jsonl", [""]))
    with pytest.raises(NotFound, match="does not exist"):
        d.load(tmp_path / "missing.jsonl")
    (tmp_path / "latin1.jsonl").write_bytes('{"question": "caf\xe9"}'.encode("latin-1"))
    with pytest.raises(BadRequest, match="not UTF-8"):
        d.load(tmp_path / "latin1.jsonl")


def test_ids_are_stable_and_the_fingerprint_tracks_content(tmp_path: Path) -> None:
    a = d.load(write(tmp_path / "a.jsonl", [{"question": "How do  I create a key?"}]))
    b = d.load(write(tmp_path / "b.jsonl", [{"question": "how do i create a key?"}]))
    assert a[0].id == b[0].id and a[0].id.startswith("q-")
    c = d.load(write(tmp_path / "c.jsonl", [{"question": "How do  I create a key?", "tags": ["x"]}]))
    assert c.fingerprint != a.fingerprint and c.version == a.version


def test_csv_round_trip_and_csv_errors(tmp_path: Path) -> None:
    ds = d.load("sample")
    path = ds.save(tmp_path / "golden.csv")
    back = d.load(path)
    assert back.fingerprint == ds.fingerprint and back.name == ds.name and back.version == "1"
    jsonl = d.load(ds.save(tmp_path / "golden.jsonl"))
    assert jsonl.fingerprint == ds.fingerprint
    hand = tmp_path / "hand.csv"
    hand.write_text("# name=hand version=3\nquestion,reference,tags,checks\n"
                    "What is 2+2?,4,math;easy,\"[{\"\"numeric\"\": 4}]\"\n"
                    "Broken?,x,,[{oops\n")
    with pytest.raises(DatasetError) as err:
        d.load(hand)
    assert [line for line, _ in err.value.errors] == [4]
    hand.write_text("question,answer_text\nq,a\n")
    with pytest.raises(DatasetError, match="unknown column"):
        d.load(hand)
    hand.write_text("# name=hand version=3\nquestion,reference,tags\nWhat is 2+2?,4,math;easy\n")
    ok = d.load(hand)
    assert ok.version == "3" and ok[0].tags == ("math", "easy")


def test_split_is_deterministic_disjoint_and_stratified() -> None:
    rows = [{"id": f"g{i}", "question": f"gov {i}?", "tags": ["governance"]} for i in range(10)]
    rows += [{"id": f"s{i}", "question": f"setup {i}?", "tags": ["setup"]} for i in range(10)]
    ds = d.from_rows(rows, name="t")
    parts = ds.split({"dev": 0.3, "test": 0.7}, seed=1)
    again = ds.split({"dev": 0.3, "test": 0.7}, seed=1)
    assert [s.id for s in parts["dev"]] == [s.id for s in again["dev"]]
    ids = [s.id for p in parts.values() for s in p]
    assert sorted(ids) == sorted(s.id for s in ds)  # disjoint and complete
    assert len(parts["dev"]) == 6 and len(parts["test"]) == 14
    assert sum(s.tags[0] == "governance" for s in parts["dev"]) == 3  # stratified
    other = ds.split({"dev": 0.3, "test": 0.7}, seed=2)
    assert {s.id for s in other["dev"]} != {s.id for s in parts["dev"]}
    assert parts["dev"].version == "1+dev" and parts["dev"].fingerprint != ds.fingerprint
    with pytest.raises(BadRequest):
        ds.split({"a": -1})


def test_filter_and_head() -> None:
    ds = d.load("sample")
    gov = ds.filter(tags=["governance"])
    assert gov and all("governance" in s.tags for s in gov)
    assert len(ds.head(2)) == 2 and ds.head(2).version.endswith("+head2")


def test_from_feedback_export(tmp_path: Path) -> None:
    export = write(tmp_path / "feedback.jsonl", [
        {"id": "fb1", "question": "How do I revoke a key?", "reference": "workbench keys revoke ID",
         "reference_contexts": ["workbench keys revoke key_3f9c"], "answer": "Delete the database.",
         "tags": ["from-feedback", "edit"], "trace_id": "t1",
         "feedback": {"kind": "edit", "value": "workbench keys revoke ID", "comment": None}},
        {"id": "fb2", "question": "What is a budget?", "reference": None, "answer": "A cat.",
         "reference_contexts": [], "tags": ["from-feedback", "thumbs-down"], "trace_id": "t2",
         "feedback": {"kind": "thumbs", "value": False, "comment": "wrong"}},
        {"id": "fb3", "question": None, "reference": None, "tags": ["from-feedback", "edit"],
         "trace_id": "t3", "feedback": {"kind": "edit"}},
    ])
    ds = d.from_feedback(export)
    assert [s.id for s in ds] == ["fb1", "fb2"]
    first, second = ds
    assert first.reference == "workbench keys revoke ID" and first.answer == "Delete the database."
    assert first.contexts == ("workbench keys revoke key_3f9c",)
    assert first.metadata["trace_id"] == "t1"
    assert "needs-reference" in second.tags and second.metadata["feedback_comment"] == "wrong"
    assert len(ds.warnings) == 1 and "no question" in ds.warnings[0]
    with pytest.raises(BadRequest, match="no usable feedback"):
        d.from_feedback([{"id": "x", "question": None}])
    # `workbench eval feedback.jsonl` takes the export as it is: load() recognises it.
    loaded = d.load(export)
    assert [s.to_dict() for s in loaded] == [s.to_dict() for s in ds]
    assert loaded.name == "feedback" and len(loaded.warnings) == 1


def test_from_answers() -> None:
    class Src:
        snippet = "Create a key with workbench keys create."

    class Ans:
        question, answer, trace_id, sources = "How?", "Use keys create.", "t9", [Src()]

    ds = d.from_answers([Ans()])
    assert ds[0].answer == ds[0].reference == "Use keys create."
    assert ds[0].contexts == (Src.snippet,) and "needs-review" in ds[0].tags


@pytest.mark.embedded
def test_from_retrieval_drafts_rows_from_search(make_gateway: Any, tmp_path: Path) -> None:
    from workbench.retrieval import ingest

    gw = make_gateway()
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "keys.md").write_text("# Keys\n\nCreate a key with `workbench keys create --team T`.\n\n"
                                  "# Budgets\n\nBudgets are reserved before each call.\n")
    ingest(gw, [docs], collection="kb", progress=False)
    ds = d.from_retrieval(gw, ["How do I create a key?"], collection="kb", k=1)
    row = ds[0]
    assert "keys create" in row.reference_contexts[0]
    assert row.reference is None and "needs-review" in row.tags
    assert row.metadata["sources"] and row.metadata["collection"] == "kb"
