"""Golden datasets: a versioned JSONL/CSV format, validation with per-line errors,
splitting, and creation from feedback exports and retrieval results.

JSONL (one object per line; the optional first line is a header)::

    {"_golden": {"format": "workbench-golden/1", "name": "docs", "version": "3"}}
    {"id": "keys-1", "question": "How do I create a key?", "reference": "Run ...",
     "reference_contexts": ["..."], "tags": ["keys"], "checks": [{"contains": "keys create"}]}

A row may also carry a recorded response (``answer``, ``contexts``) so it can be judged
without calling a target, e.g. rows exported from user feedback.

CSV: the same fields as columns; list cells are JSON arrays (``tags`` may also be
``a;b``), ``checks``/``metadata`` are JSON. Optional leading ``#`` lines hold the header as
``key=value`` pairs (``# name=docs version=3``).

A dataset's identity in a run is its declared ``version`` plus a ``fingerprint`` (a hash
of the rows), so an edited file never passes for the version it was before.
"""

from __future__ import annotations

import csv
import hashlib
import html
import io
import json
import shlex
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from workbench.errors import BadRequest, NotFound
from workbench.store import Store

if TYPE_CHECKING:
    from workbench.models.gateway import Gateway

FORMAT = "workbench-golden/1"
SAMPLE = "sample"
_MAX_LISTED = 20
LIST_FIELDS = ("reference_contexts", "contexts", "tags")
JSON_FIELDS = ("checks", "metadata")
CSV_COLUMNS = ("id", "question", "reference", "reference_contexts", "tags", "answer",
               "contexts", "checks", "metadata")


class GoldenSample(BaseModel):
    """One golden row. ``answer``/``contexts`` are a recorded response (optional)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, max_length=200)
    question: str = Field(min_length=1)
    reference: str | None = None
    reference_contexts: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    checks: tuple[dict[str, Any], ...] = ()
    answer: str | None = None
    contexts: tuple[str, ...] | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("question")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be blank")
        return v

    @field_validator("tags")
    @classmethod
    def _tags(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(t.strip() for t in v if t.strip())

    def to_dict(self) -> dict[str, Any]:
        data = self.model_dump(exclude_defaults=True)
        data["id"], data["question"] = self.id, self.question
        return {k: list(v) if isinstance(v, tuple) else v for k, v in data.items()}


class DatasetError(BadRequest):
    """The dataset has problems; ``errors`` lists ``(line, message)`` for each."""

    code = "invalid_dataset"

    def __init__(self, source: str, errors: list[tuple[int, str]]):
        self.errors = errors
        shown = [f"  line {line}: {msg}" if line else f"  {msg}" for line, msg in errors[:_MAX_LISTED]]
        more = len(errors) - _MAX_LISTED
        super().__init__(f"{source}: {len(errors)} problem(s) in the golden dataset:\n"
                         + "\n".join(shown) + (f"\n  ... and {more} more" if more > 0 else "")
                         + "\nfix the lines above (the format: help(workbench.evals.datasets))")


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _auto_id(question: str) -> str:
    return "q-" + hashlib.sha256(" ".join(question.split()).lower().encode()).hexdigest()[:10]


def _pydantic_problems(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "row"
        msg = "unknown field (typo?)" if err["type"] == "extra_forbidden" else err["msg"]
        parts.append(f"{loc}: {msg}")
    return "; ".join(parts)


@dataclass
class GoldenDataset:
    """An ordered, validated list of :class:`GoldenSample` with a name and a version."""

    samples: list[GoldenSample]
    name: str = "golden"
    version: str = "1"
    description: str = ""
    path: str | None = None
    warnings: list[str] = field(default_factory=list)

    # -- identity ------------------------------------------------------------------------
    @property
    def fingerprint(self) -> str:
        blob = json.dumps([s.to_dict() for s in self.samples], sort_keys=True,
                          ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:12]

    @property
    def ref(self) -> str:
        """``name@version#fingerprint``: how runs name the data they scored."""
        return f"{self.name}@{self.version}#{self.fingerprint}"

    # -- access --------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.samples)

    def __iter__(self) -> Iterator[GoldenSample]:
        return iter(self.samples)

    def __getitem__(self, i: int) -> GoldenSample:
        return self.samples[i]

    def tags(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for s in self.samples:
            for t in s.tags:
                out[t] = out.get(t, 0) + 1
        return dict(sorted(out.items()))

    def _derived(self, samples: list[GoldenSample], suffix: str) -> GoldenDataset:
        return GoldenDataset(samples, name=self.name, version=f"{self.version}{suffix}",
                             description=self.description, path=self.path)

    def filter(self, *, tags: Iterable[str] | None = None,
               ids: Iterable[str] | None = None) -> GoldenDataset:
        """Rows having any of ``tags`` and/or one of ``ids``."""
        want_tags, want_ids = set(tags or ()), set(ids or ())
        rows = [s for s in self.samples
                if (not want_tags or want_tags & set(s.tags)) and (not want_ids or s.id in want_ids)]
        label = ",".join(sorted(want_tags | want_ids))
        return self._derived(rows, f"+filter[{label}]")

    def head(self, n: int) -> GoldenDataset:
        return self._derived(self.samples[:n], f"+head{n}")

    def split(self, ratios: Mapping[str, float] | None = None, *, seed: int = 0,
              stratify: bool = True) -> dict[str, GoldenDataset]:
        """Deterministic split (same seed, same rows -> same split). ``stratify``: each
        part gets its share of every first tag. Default ``{"dev": 0.5, "test": 0.5}``."""
        ratios = dict(ratios or {"dev": 0.5, "test": 0.5})
        if not ratios or any(r < 0 for r in ratios.values()) or sum(ratios.values()) <= 0:
            raise BadRequest("split ratios must be non-negative and sum to more than 0")
        total = sum(ratios.values())
        shares = {k: v / total for k, v in ratios.items()}
        groups: dict[str, list[GoldenSample]] = {}
        for s in self.samples:
            groups.setdefault(s.tags[0] if stratify and s.tags else "", []).append(s)
        parts: dict[str, list[GoldenSample]] = {k: [] for k in shares}
        for group, rows in groups.items():
            rows = sorted(rows, key=lambda s: _digest(f"{seed}:{s.id}"))
            # Largest remainder: exact counts that add up to the group size; ties go to a
            # part chosen by the seed and group, so no part always wins them.
            raw = {k: share * len(rows) for k, share in shares.items()}
            counts = {k: int(v) for k, v in raw.items()}
            order = sorted(raw, key=lambda k: (counts[k] - raw[k], _digest(f"{seed}:{group}:{k}")))
            for k in order[:len(rows) - sum(counts.values())]:
                counts[k] += 1
            pos = 0
            for k, n in counts.items():
                parts[k].extend(rows[pos:pos + n])
                pos += n
        position = {s.id: i for i, s in enumerate(self.samples)}
        return {k: self._derived(sorted(v, key=lambda s: position[s.id]), f"+{k}")
                for k, v in parts.items()}

    # -- output --------------------------------------------------------------------------
    def header(self) -> dict[str, Any]:
        return {"format": FORMAT, "name": self.name, "version": self.version,
                **({"description": self.description} if self.description else {})}

    def save(self, path: str | Path) -> Path:
        """Write JSONL (``.jsonl``) or CSV (``.csv``) with the header."""
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        if out.suffix.lower() == ".csv":
            buf = io.StringIO()
            buf.write("# " + " ".join(f"{k}={shlex.quote(str(v))}"
                                      for k, v in self.header().items()) + "\n")
            writer = csv.DictWriter(buf, fieldnames=list(CSV_COLUMNS))
            writer.writeheader()
            for s in self.samples:
                d = s.to_dict()
                writer.writerow({c: (json.dumps(d[c], ensure_ascii=False)
                                     if c in LIST_FIELDS + JSON_FIELDS and c in d
                                     else d.get(c, "")) for c in CSV_COLUMNS})
            out.write_text(buf.getvalue(), encoding="utf-8")
        else:
            lines = [json.dumps({"_golden": self.header()}, ensure_ascii=False)]
            lines += [json.dumps(s.to_dict(), ensure_ascii=False) for s in self.samples]
            out.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return out

    def to_pandas(self) -> Any:
        import pandas as pd

        return pd.DataFrame([s.to_dict() for s in self.samples])

    def __repr__(self) -> str:
        return f"GoldenDataset({self.ref}, {len(self)} samples, tags={list(self.tags())})"

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><td>{html.escape(s.id)}</td><td>{html.escape(s.question)}</td>"
            f"<td>{html.escape(s.reference or '')}</td><td>{html.escape(', '.join(s.tags))}</td></tr>"
            for s in self.samples[:20])
        more = f"<p>… {len(self) - 20} more</p>" if len(self) > 20 else ""
        return (f"<div><b>{html.escape(self.ref)}</b> · {len(self)} samples<table>"
                "<tr><th>id</th><th>question</th><th>reference</th><th>tags</th></tr>"
                f"{rows}</table>{more}</div>")


# -- parsing ---------------------------------------------------------------------------
def _validate_rows(source: str, rows: Iterable[tuple[int, Any]],
                   header: dict[str, Any]) -> GoldenDataset:
    errors: list[tuple[int, str]] = []
    samples: list[GoldenSample] = []
    seen: dict[str, int] = {}
    for line, raw in rows:
        if not isinstance(raw, dict):
            errors.append((line, f"expected a JSON object, got {type(raw).__name__}"))
            continue
        data = dict(raw)
        if not data.get("id"):
            question = data.get("question")
            # Without a question there is nothing to derive an id from; report the question.
            data["id"] = (_auto_id(question) if isinstance(question, str) and question.strip()
                          else f"line-{line}")
        try:
            sample = GoldenSample.model_validate(data)
        except ValidationError as exc:
            errors.append((line, _pydantic_problems(exc)))
            continue
        if sample.id in seen:
            errors.append((line, f"duplicate id {sample.id!r} (first on line {seen[sample.id]})"))
            continue
        for i, spec in enumerate(sample.checks):
            try:
                from workbench.evals.checks import from_spec

                from_spec(spec)
            except BadRequest as exc:
                errors.append((line, f"checks[{i}]: {exc.message}"))
        seen[sample.id] = line
        samples.append(sample)
    fmt = header.get("format", FORMAT)
    if fmt != FORMAT:
        errors.insert(0, (1, f"unsupported format {fmt!r}; this workbench reads {FORMAT!r}"))
    if not samples and not errors:
        errors.append((0, "no rows: a golden dataset needs at least one question"))
    if errors:
        raise DatasetError(source, errors)
    name = str(header.get("name") or Path(source).stem or "golden")
    return GoldenDataset(samples, name=name, version=str(header.get("version", "1")),
                         description=str(header.get("description", "")), path=source)


def _jsonl_rows(text: str) -> tuple[dict[str, Any], list[tuple[int, Any]], list[tuple[int, str]]]:
    header: dict[str, Any] = {}
    rows: list[tuple[int, Any]] = []
    bad: list[tuple[int, str]] = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            bad.append((n, f"not valid JSON ({exc.msg} at column {exc.colno})"))
            continue
        if isinstance(obj, dict) and "_golden" in obj:
            if rows or header:
                bad.append((n, "the _golden header must be the first line"))
            elif not isinstance(obj["_golden"], dict):
                bad.append((n, "_golden must be an object"))
            else:
                header = obj["_golden"]
            continue
        rows.append((n, obj))
    return header, rows, bad


def _csv_cell(column: str, value: str) -> Any:
    value = value.strip()
    if column in LIST_FIELDS:
        if not value:
            return None if column == "contexts" else []
        if value.startswith("["):
            return json.loads(value)
        return [t for t in value.replace(";", ",").split(",")] if column == "tags" else [value]
    if column in JSON_FIELDS:
        return json.loads(value) if value else ([] if column == "checks" else {})
    return value or None


def _csv_rows(text: str) -> tuple[dict[str, Any], list[tuple[int, Any]], list[tuple[int, str]]]:
    header: dict[str, Any] = {}
    lines = text.splitlines(keepends=True)
    skip = 0
    for line in lines:
        if not line.startswith("#"):
            break
        skip += 1
        for part in shlex.split(line[1:]):
            if "=" in part:
                k, v = part.split("=", 1)
                header[k.strip()] = v
    reader = csv.DictReader(io.StringIO("".join(lines[skip:])))
    rows: list[tuple[int, Any]] = []
    bad: list[tuple[int, str]] = []
    unknown = [c for c in reader.fieldnames or [] if c not in CSV_COLUMNS]
    if unknown:
        bad.append((skip + 1, f"unknown column(s) {unknown}; columns are {', '.join(CSV_COLUMNS)}"))
    for rec in reader:
        lineno = skip + reader.line_num
        try:
            rows.append((lineno, {k: _csv_cell(k, v or "") for k, v in rec.items()
                                if k in CSV_COLUMNS and (v or "").strip()}))
        except json.JSONDecodeError as exc:
            bad.append((lineno, f"a JSON cell does not parse ({exc.msg})"))
    return header, rows, bad


AGENT_TASKS = "agent-tasks"


def agent_tasks_path() -> Path:
    """The shipped golden set of agent tasks (tool choice, arguments, steps, answer)."""
    return Path(str(resources.files("workbench.evals") / "data" / "agent_tasks.jsonl"))


def sample_path() -> Path:
    """The shipped sample golden set (questions about the workbench's own docs)."""
    return Path(str(resources.files("workbench.evals") / "data" / "sample_golden.jsonl"))


def parse(text: str, *, source: str = "<text>", fmt: str = "jsonl") -> GoldenDataset:
    header, rows, bad = _csv_rows(text) if fmt == "csv" else _jsonl_rows(text)
    try:
        ds = _validate_rows(source, rows, header)
    except DatasetError as exc:
        errors = [e for e in exc.errors if e[0] or not bad]  # "no rows" adds nothing here
        raise DatasetError(source, sorted(bad + errors)) from None
    if bad:
        raise DatasetError(source, bad)
    return ds


def load(path: str | Path) -> GoldenDataset:
    """Load and validate a golden dataset (``.jsonl`` or ``.csv``; ``"sample"`` and
    ``"agent-tasks"`` are the shipped ones). Every problem is reported with its line number in one error."""
    p = (sample_path() if str(path) == SAMPLE
         else agent_tasks_path() if str(path) == AGENT_TASKS else Path(path))
    if not p.exists():
        raise NotFound(f"dataset {str(path)!r} does not exist (give a .jsonl/.csv path, or "
                       f"'{SAMPLE}' for the shipped sample)")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise BadRequest(f"{p}: not UTF-8 text; save the dataset as UTF-8") from None
    fmt = "csv" if p.suffix.lower() == ".csv" else "jsonl"
    if fmt == "jsonl" and _is_feedback_export(text):
        # `workbench feedback export` output: evaluable as it is (edits are references,
        # thumbs-down rows are tagged needs-reference), no conversion step needed.
        return from_feedback(p, name=p.stem)
    return parse(text, source=str(p), fmt=fmt)


def _is_feedback_export(text: str) -> bool:
    header, rows, _ = _jsonl_rows(text)
    return not header and bool(rows) and all(
        isinstance(r, dict) and isinstance(r.get("feedback"), dict) for _, r in rows)


def from_rows(rows: Iterable[Mapping[str, Any]], *, name: str = "golden",
              version: str = "1", description: str = "") -> GoldenDataset:
    """Validate in-memory rows (same rules as a file; "line" = row number)."""
    ds = _validate_rows(name, ((i, dict(r)) for i, r in enumerate(rows, 1)),
                        {"name": name, "version": version, "description": description})
    ds.path = None
    return ds


# -- creation --------------------------------------------------------------------------
def from_feedback(source: str | Path | Iterable[Mapping[str, Any]] | Any, *,
                  name: str = "from-feedback", version: str = "1") -> GoldenDataset:
    """Golden rows from user feedback: a feedback export (JSONL written by
    ``workbench feedback export``), its rows, or a ``Store`` to read feedback from.

    Edits become references; thumbs-down rows keep the bad answer as the recorded
    response and are tagged ``needs-reference`` until someone writes one. Rows whose trace
    has no question are skipped and listed in ``dataset.warnings``.
    """
    rows: list[Mapping[str, Any]]
    if isinstance(source, str | Path):
        p = Path(source)
        if not p.exists():
            raise NotFound(f"feedback export {p} does not exist")
        _, parsed, bad = _jsonl_rows(p.read_text(encoding="utf-8"))
        if bad:
            raise DatasetError(str(p), bad)
        rows = [r for _, r in parsed]
    elif isinstance(source, Store):
        from workbench.observability.feedback import golden_rows

        rows = list(golden_rows(source))
    else:
        rows = list(source)
    out: list[dict[str, Any]] = []
    warnings: list[str] = []
    seen: set[str] = set()
    for i, r in enumerate(rows, 1):
        question = r.get("question")
        if not question:
            warnings.append(f"row {i} (feedback {r.get('id')}): no question in its trace; skipped")
            continue
        tags = list(r.get("tags") or ["from-feedback"])
        if not r.get("reference"):
            tags.append("needs-reference")
        sid = str(r.get("id") or _auto_id(question))
        if sid in seen:
            continue
        seen.add(sid)
        contexts = list(r.get("reference_contexts") or [])
        fb = r.get("feedback") or {}
        out.append({
            "id": sid, "question": question, "reference": r.get("reference"),
            "reference_contexts": contexts, "tags": tags,
            "answer": r.get("answer"), "contexts": contexts if r.get("answer") else None,
            "metadata": {k: v for k, v in {"trace_id": r.get("trace_id"),
                                           "feedback_kind": fb.get("kind"),
                                           "feedback_comment": fb.get("comment")}.items() if v},
        })
    if not out:
        raise BadRequest("no usable feedback rows (none had a question); record feedback on "
                         "traced answers first" + (f" ({len(warnings)} skipped)" if warnings else ""))
    ds = from_rows(out, name=name, version=version,
                   description="created from user feedback; review before trusting")
    ds.warnings = warnings
    return ds


def from_retrieval(gw: Gateway, questions: Sequence[str], *, collection: str = "docs",
                   k: int = 3, mode: str = "hybrid", name: str = "from-retrieval",
                   version: str = "1") -> GoldenDataset:
    """Draft golden rows from retrieval results: each question's top-``k`` chunks become
    its ``reference_contexts`` (tagged ``needs-review``; a human writes the reference)."""
    from workbench.retrieval import search

    rows = []
    for q in questions:
        hits = search(gw, q, collection=collection, k=k, mode=mode)  # type: ignore[arg-type]
        rows.append({"question": q, "reference_contexts": [h.text for h in hits],
                     "tags": ["from-retrieval", "needs-review"],
                     "metadata": {"sources": [h.source for h in hits], "collection": collection,
                                  "mode": mode}})
    return from_rows(rows, name=name, version=version,
                     description=f"drafted from {collection} retrieval; add references")


def from_answers(answers: Iterable[Any], *, name: str = "from-answers",
                 version: str = "1") -> GoldenDataset:
    """Rows from RAG ``Answer`` objects (``retrieval.ask``): the answer and its source
    snippets are the recorded response; the answer is also the draft reference."""
    rows = []
    for a in answers:
        snippets = [s.snippet for s in getattr(a, "sources", [])]
        rows.append({"question": a.question, "reference": a.answer, "answer": a.answer,
                     "contexts": snippets, "reference_contexts": snippets,
                     "tags": ["from-retrieval", "needs-review"],
                     "metadata": {"trace_id": a.trace_id}})
    return from_rows(rows, name=name, version=version)


__all__ = ["FORMAT", "SAMPLE", "DatasetError", "GoldenDataset", "GoldenSample", "from_answers",
           "from_feedback", "from_retrieval", "from_rows", "load", "parse", "sample_path"]
