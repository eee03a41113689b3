"""Deterministic checks: the cheap rungs of the eval ladder (exact -> pattern -> schema ->
semantic), each returning a :class:`CheckResult` with a score and a reason.

    >>> from workbench.evals import checks as c
    >>> check = c.contains("workbench keys create") & c.not_contains("sk-") & c.length(max_words=80)
    >>> check("Run `workbench keys create --team T`.").passed
    True

Checks compose with ``&`` (all), ``|`` (any) and ``~`` (not), or :func:`all_of` /
:func:`any_of` / :func:`not_`. A check accepts a plain string, a :class:`Output`, a
``ChatResult`` or a RAG ``Answer``: latency and cost bounds read those objects' facts.

Semantic similarity embeds through the Gateway (governed, in the ledger); every other check
is pure Python and makes no model call.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from workbench.errors import BadRequest

if TYPE_CHECKING:
    from workbench.guardrails import Guardrails
    from workbench.models.gateway import Gateway


@dataclass(frozen=True)
class Output:
    """What a check looks at: the answer plus the facts some checks need."""

    answer: str
    contexts: tuple[str, ...] = ()
    latency_ms: float | None = None
    cost_usd: float | None = None
    question: str | None = None
    reference: str | None = None
    # Facts beyond the text (an agent run's tool calls, steps, stop reason): the agent
    # checks (workbench.evals.agent_checks) read them.
    facts: Mapping[str, Any] | None = None


def as_output(value: Any) -> Output:
    """Normalise a string, ``Output``, ``ChatResult``, RAG ``Answer`` or mapping."""
    if isinstance(value, Output):
        return value
    facts_of = getattr(value, "eval_facts", None)
    if callable(facts_of):  # an agent run: its answer plus what it did
        return Output(answer=str(getattr(value, "answer", None) or ""),
                      cost_usd=getattr(value, "cost_usd", None),
                      latency_ms=getattr(value, "latency_ms", None),
                      question=getattr(value, "task", None), facts=facts_of())
    if isinstance(value, str):
        return Output(answer=value)
    if isinstance(value, Mapping):
        return Output(answer=str(value.get("answer") or value.get("text") or ""),
                      contexts=tuple(value.get("contexts") or ()),
                      latency_ms=value.get("latency_ms"), cost_usd=value.get("cost_usd"),
                      question=value.get("question"), reference=value.get("reference"))
    text = getattr(value, "answer", None)
    if not isinstance(text, str):
        text = getattr(value, "text", None)
    if not isinstance(text, str):
        raise BadRequest(f"cannot check a {type(value).__name__}: pass a string, an "
                         "evals.Output, a ChatResult or a retrieval Answer")
    contexts = getattr(value, "contexts", None)
    if contexts is None and getattr(value, "sources", None) is not None:
        contexts = [getattr(s, "snippet", "") for s in value.sources]
    return Output(answer=text, contexts=tuple(contexts or ()),
                  latency_ms=getattr(value, "latency_ms", None),
                  cost_usd=getattr(value, "cost_usd", None),
                  question=getattr(value, "question", None))


@dataclass(frozen=True)
class CheckResult:
    """``passed``; ``score`` in [0, 1] (1 = best); ``reason`` says why, in one line."""

    name: str
    passed: bool
    score: float
    reason: str
    children: tuple[CheckResult, ...] = ()

    def failures(self) -> list[CheckResult]:
        """The failing leaves (for a composite) or itself."""
        if self.passed:
            return []
        if not self.children:
            return [self]
        out = [leaf for c in self.children for leaf in c.failures()]
        return out or [self]

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        return f"{'PASS' if self.passed else 'FAIL'} {self.name}: {self.reason}"


def _short(text: str, n: int = 60) -> str:
    flat = " ".join(text.split())
    return repr(flat if len(flat) <= n else flat[:n - 1] + "…")


@dataclass
class Check:
    """A named predicate over an :class:`Output`. Subclass or build with :func:`check`."""

    name: str
    fn: Callable[[Output], CheckResult] = field(repr=False)

    def __call__(self, value: Any) -> CheckResult:
        return self.fn(as_output(value))

    def __and__(self, other: Check) -> Check:
        return all_of(self, other)

    def __or__(self, other: Check) -> Check:
        return any_of(self, other)

    def __invert__(self) -> Check:
        return not_(self)


def check(name: str) -> Callable[[Callable[[Output], tuple[bool, str] | CheckResult]], Check]:
    """Decorator for custom checks: the function returns ``(passed, reason)``."""

    def wrap(fn: Callable[[Output], tuple[bool, str] | CheckResult]) -> Check:
        def run(out: Output) -> CheckResult:
            res = fn(out)
            if isinstance(res, CheckResult):
                return res
            passed, reason = res
            return CheckResult(name, bool(passed), 1.0 if passed else 0.0, reason)

        return Check(name, run)

    return wrap


def _result(name: str, passed: bool, reason: str, score: float | None = None) -> CheckResult:
    return CheckResult(name, passed, (1.0 if passed else 0.0) if score is None else score, reason)


# -- composition -----------------------------------------------------------------------
def all_of(*checks: Check, name: str | None = None) -> Check:
    """Passes when every check passes; score is the mean of the scores."""
    label = name or " & ".join(c.name for c in checks)

    def run(out: Output) -> CheckResult:
        results = tuple(c.fn(out) for c in checks)
        failed = [r for r in results if not r.passed]
        score = sum(r.score for r in results) / len(results) if results else 1.0
        reason = ("all passed" if not failed else
                  "; ".join(f"{r.name}: {r.reason}" for r in failed))
        return CheckResult(label, not failed, score, reason, results)

    return Check(label, run)


def any_of(*checks: Check, name: str | None = None) -> Check:
    """Passes when at least one check passes; score is the best score."""
    label = name or " | ".join(c.name for c in checks)

    def run(out: Output) -> CheckResult:
        results = tuple(c.fn(out) for c in checks)
        passing = [r for r in results if r.passed]
        score = max((r.score for r in results), default=0.0)
        reason = (f"{passing[0].name} passed" if passing else
                  "none passed: " + "; ".join(f"{r.name}: {r.reason}" for r in results))
        return CheckResult(label, bool(passing), score, reason, results)

    return Check(label, run)


def not_(inner: Check, name: str | None = None) -> Check:
    label = name or f"not {inner.name}"

    def run(out: Output) -> CheckResult:
        r = inner.fn(out)
        return CheckResult(label, not r.passed, 1.0 - r.score,
                           f"expected the opposite of: {r.reason}", (r,))

    return Check(label, run)


# -- exact and pattern -----------------------------------------------------------------
def _norm(text: str, ignore_case: bool, collapse_ws: bool) -> str:
    if collapse_ws:
        text = " ".join(text.split())
    return text.casefold() if ignore_case else text


def equals(expected: str, *, ignore_case: bool = False, collapse_whitespace: bool = True) -> Check:
    """The answer equals ``expected`` (surrounding/repeated whitespace ignored by default)."""
    name = f"equals({_short(expected, 30)})"

    def run(out: Output) -> CheckResult:
        ok = _norm(out.answer, ignore_case, collapse_whitespace) == \
            _norm(expected, ignore_case, collapse_whitespace)
        return _result(name, ok, "exact match" if ok else
                       f"got {_short(out.answer)}, expected {_short(expected)}")

    return Check(name, run)


def _needles(values: tuple[str | Sequence[str], ...]) -> list[str]:
    out: list[str] = []
    for v in values:
        out.extend([v] if isinstance(v, str) else list(v))
    if not out:
        raise BadRequest("contains/not_contains need at least one string")
    return out


def contains(*values: str | Sequence[str], ignore_case: bool = True, mode: str = "all") -> Check:
    """The answer contains every value (``mode="any"``: at least one)."""
    needles = _needles(values)
    if mode not in ("all", "any"):
        raise BadRequest("contains(mode=...) must be 'all' or 'any'")
    name = f"contains({', '.join(_short(n, 24) for n in needles)})"

    def run(out: Output) -> CheckResult:
        hay = _norm(out.answer, ignore_case, True)
        found = [n for n in needles if _norm(n, ignore_case, True) in hay]
        missing = [n for n in needles if n not in found]
        ok = not missing if mode == "all" else bool(found)
        score = len(found) / len(needles)
        reason = (f"found {len(found)}/{len(needles)}" if ok else
                  f"missing {', '.join(_short(m, 30) for m in missing)}")
        return _result(name, ok, reason, score if mode == "all" else float(ok))

    return Check(name, run)


def not_contains(*values: str | Sequence[str], ignore_case: bool = True) -> Check:
    """The answer contains none of the values."""
    needles = _needles(values)
    name = f"not_contains({', '.join(_short(n, 24) for n in needles)})"

    def run(out: Output) -> CheckResult:
        hay = _norm(out.answer, ignore_case, True)
        found = [n for n in needles if _norm(n, ignore_case, True) in hay]
        return _result(name, not found, "none present" if not found else
                       f"found {', '.join(_short(f, 30) for f in found)}",
                       1.0 - len(found) / len(needles))

    return Check(name, run)


def starts_with(prefix: str, *, ignore_case: bool = False) -> Check:
    name = f"starts_with({_short(prefix, 30)})"

    def run(out: Output) -> CheckResult:
        ok = _norm(out.answer, ignore_case, True).startswith(_norm(prefix, ignore_case, True))
        return _result(name, ok, "prefix matches" if ok else
                       f"answer starts with {_short(out.answer, 30)}")

    return Check(name, run)


def regex(pattern: str, *, flags: int = 0, full: bool = False) -> Check:
    """The pattern is found in the answer (``full=True``: matches the whole answer)."""
    try:
        compiled = re.compile(pattern, flags)
    except re.error as exc:
        raise BadRequest(f"regex {pattern!r} does not compile: {exc}") from None
    name = f"regex({pattern!r})"

    def run(out: Output) -> CheckResult:
        text = out.answer.strip() if full else out.answer
        m = compiled.fullmatch(text) if full else compiled.search(text)
        return _result(name, m is not None, f"matched {_short(m.group(0), 40)}" if m
                       else "no match")

    return Check(name, run)


# -- schema ----------------------------------------------------------------------------
_FENCE = re.compile(r"^\s*```(?:json)?\s*\n(.*?)\n\s*```\s*$", re.S)


def parse_json(text: str) -> Any:
    """JSON from an answer, tolerating a Markdown code fence around it."""
    m = _FENCE.match(text)
    return json.loads(m.group(1) if m else text)


def json_schema(schema: Mapping[str, Any]) -> Check:
    """The answer is JSON (a ```json fence is tolerated) valid against ``schema``."""
    import jsonschema

    try:
        validator_cls = jsonschema.validators.validator_for(schema)
        validator_cls.check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise BadRequest(f"json_schema: the schema itself is invalid: {exc.message}") from None
    validator = validator_cls(schema)
    name = f"json_schema({schema.get('title') or schema.get('type') or 'object'})"

    def run(out: Output) -> CheckResult:
        try:
            data = parse_json(out.answer)
        except json.JSONDecodeError as exc:
            return _result(name, False, f"not JSON: {exc.msg} at char {exc.pos}")
        errors = sorted(validator.iter_errors(data), key=lambda e: list(e.path))
        if not errors:
            return _result(name, True, "valid")
        first = errors[0]
        where = "/".join(str(p) for p in first.path) or "(root)"
        more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
        return _result(name, False, f"{where}: {first.message}{more}")

    return Check(name, run)


# -- size, speed, cost -----------------------------------------------------------------
def length(*, min_chars: int | None = None, max_chars: int | None = None,
           min_words: int | None = None, max_words: int | None = None) -> Check:
    bounds = {"min_chars": min_chars, "max_chars": max_chars, "min_words": min_words,
              "max_words": max_words}
    if all(v is None for v in bounds.values()):
        raise BadRequest("length() needs at least one of min_chars, max_chars, min_words, max_words")
    name = "length(" + ", ".join(f"{k}={v}" for k, v in bounds.items() if v is not None) + ")"

    def run(out: Output) -> CheckResult:
        n_chars, n_words = len(out.answer.strip()), len(out.answer.split())
        problems = []
        if min_chars is not None and n_chars < min_chars:
            problems.append(f"{n_chars} chars < {min_chars}")
        if max_chars is not None and n_chars > max_chars:
            problems.append(f"{n_chars} chars > {max_chars}")
        if min_words is not None and n_words < min_words:
            problems.append(f"{n_words} words < {min_words}")
        if max_words is not None and n_words > max_words:
            problems.append(f"{n_words} words > {max_words}")
        return _result(name, not problems, "; ".join(problems) or
                       f"{n_chars} chars, {n_words} words")

    return Check(name, run)


def _bound(name: str, attr: str, limit: float, unit: str) -> Check:
    def run(out: Output) -> CheckResult:
        value = getattr(out, attr)
        if value is None:
            return _result(name, False, f"no {attr} recorded (pass a ChatResult, an Answer "
                           "or an Output with it)")
        ok = value <= limit
        return _result(name, ok, f"{value:.6g} {unit} {'<=' if ok else '>'} {limit:g} {unit}")

    return Check(name, run)


def max_latency_ms(limit: float) -> Check:
    return _bound(f"max_latency_ms({limit:g})", "latency_ms", limit, "ms")


def max_cost_usd(limit: float) -> Check:
    return _bound(f"max_cost_usd({limit:g})", "cost_usd", limit, "USD")


# -- numbers ---------------------------------------------------------------------------
_NUMBER = re.compile(r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?")


def extract_numbers(text: str) -> list[float]:
    return [float(m.group(0).replace(",", "")) for m in _NUMBER.finditer(text)]


def numeric(expected: float, *, abs_tol: float = 0.0, rel_tol: float = 0.0,
            which: str = "any") -> Check:
    """A number in the answer is within tolerance of ``expected`` (``which``: ``any``
    number in the text, or only the ``first`` / ``last``)."""
    if which not in ("any", "first", "last"):
        raise BadRequest("numeric(which=...) must be any, first or last")
    name = f"numeric({expected:g}±{max(abs_tol, rel_tol * abs(expected)):g})"

    def run(out: Output) -> CheckResult:
        nums = extract_numbers(out.answer)
        if not nums:
            return _result(name, False, "no number in the answer")
        pool = nums if which == "any" else [nums[0] if which == "first" else nums[-1]]
        best = min(pool, key=lambda x: abs(x - expected))
        ok = math.isclose(best, expected, abs_tol=abs_tol, rel_tol=rel_tol)
        return _result(name, ok, f"closest number {best:g} "
                       f"({'within' if ok else 'outside'} tolerance of {expected:g})")

    return Check(name, run)


# -- refusals and PII ------------------------------------------------------------------
REFUSAL_PATTERNS = (
    r"\bI (?:do not|don't|dont) know\b",
    r"\bI (?:can ?not|can't|cannot|am unable to|'m unable to|am not able to|won't|will not)"
    r" (?:help|answer|assist|provide|comply|do that|share)",
    r"\b(?:sorry|apologi[sz]e)\b.{0,40}\b(?:can ?not|can't|unable|not able)\b",
    r"\bAs an AI\b",
    r"\b(?:the )?(?:sources?|context|documents?) (?:do(?:es)? not|don't|doesn't) "
    r"(?:contain|mention|say|provide)",
    r"\bnot (?:able|allowed|permitted) to (?:help|answer|share|provide)",
    r"\bnothing relevant\b",
)
_REFUSAL = re.compile("|".join(REFUSAL_PATTERNS), re.I | re.S)


def is_refusal(text: str) -> str | None:
    """The refusal phrase found in ``text``, or None."""
    m = _REFUSAL.search(text)
    return m.group(0) if m else None


def refusal(expected: bool = True) -> Check:
    """The answer is a refusal / "I don't know" (``expected=False``: it is not)."""
    name = "refusal" if expected else "no_refusal"

    def run(out: Output) -> CheckResult:
        phrase = is_refusal(out.answer)
        found = phrase is not None
        reason = f"refusal phrase {_short(phrase, 40)}" if phrase else "no refusal phrase"
        return _result(name, found == expected, reason)

    return Check(name, run)


def no_refusal() -> Check:
    return refusal(expected=False)


def pii_free(guardrails: Guardrails | None = None) -> Check:
    """No PII or secret: ``guardrails``' recognizers, else the redaction policy of the
    settings (e-mail, phone, card, IBAN, IP, keys, plus ``redaction_patterns``). The
    reason names the kinds found, never the values."""
    name = "pii_free"

    def run(out: Output) -> CheckResult:
        from workbench.guardrails import default_guardrails

        findings = (guardrails or default_guardrails()).scan(out.answer)
        kinds: dict[str, int] = {}
        for f in findings:
            kinds[f.kind] = kinds.get(f.kind, 0) + 1
        return _result(name, not findings, "no PII or secrets" if not findings else
                       "found " + ", ".join(f"{k}x{v}" for k, v in sorted(kinds.items())))

    return Check(name, run)


# -- semantic --------------------------------------------------------------------------
def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    na = math.sqrt(sum(x * x for x in a))
    nb = math.sqrt(sum(y * y for y in b))
    return dot / (na * nb) if na and nb else 0.0


class _LazyGateway:
    """The gateway a semantic check embeds through: given, or ``connect()`` on first use."""

    def __init__(self, gateway: Gateway | None):
        self.gateway = gateway

    def get(self) -> Gateway:
        if self.gateway is None:
            from workbench.api import connect

            self.gateway = connect()
        return self.gateway


def semantic_similarity(reference: str | None = None, *, threshold: float = 0.75,
                        gateway: Gateway | None = None, model: str = "minilm-l6-v2") -> Check:
    """Cosine similarity of answer and ``reference`` (default: the Output's reference)
    embedded through the Gateway; passes at ``>= threshold``. The score is the cosine."""
    if not 0.0 <= threshold <= 1.0:
        raise BadRequest("semantic_similarity threshold must be between 0 and 1")
    gw = _LazyGateway(gateway)
    name = f"semantic_similarity(>={threshold:g})"

    def run(out: Output) -> CheckResult:
        ref = reference if reference is not None else out.reference
        if not ref:
            return _result(name, False, "no reference to compare with")
        if not out.answer.strip():
            return _result(name, False, "empty answer", 0.0)
        a, b = gw.get().embed([out.answer, ref], model=model).vectors
        sim = cosine(a, b)
        ok = sim >= threshold
        return _result(name, ok, f"cosine {sim:.3f} {'>=' if ok else '<'} {threshold:g}",
                       max(0.0, min(1.0, sim)))

    return Check(name, run)


# -- from data (golden datasets, CLI) --------------------------------------------------
# Checks on an agent run's facts (workbench.evals.agent_checks, imported when used: it
# imports this module).
AGENT_CHECK_TYPES = ("max_steps", "stopped", "tool_args", "tool_called",
                     "tool_called_in_order", "tool_not_called")


def _spec_builders(gateway: Gateway | None) -> dict[str, Callable[[Any], Check]]:
    def kw(v: Any) -> dict[str, Any]:
        return dict(v) if isinstance(v, Mapping) else {}

    return {
        "equals": lambda v: equals(v) if isinstance(v, str) else equals(**kw(v)),
        "contains": lambda v: contains(v) if isinstance(v, str | list) else contains(**kw(v)),
        "contains_any": lambda v: contains(v, mode="any"),
        "not_contains": lambda v: not_contains(v) if isinstance(v, str | list)
        else not_contains(**kw(v)),
        "starts_with": lambda v: starts_with(v) if isinstance(v, str) else starts_with(**kw(v)),
        "regex": lambda v: regex(v) if isinstance(v, str) else regex(**kw(v)),
        "json_schema": lambda v: json_schema(v),
        "length": lambda v: length(**kw(v)),
        "max_latency_ms": lambda v: max_latency_ms(float(v)),
        "max_cost_usd": lambda v: max_cost_usd(float(v)),
        "numeric": lambda v: numeric(float(v)) if isinstance(v, int | float) else numeric(**kw(v)),
        "refusal": lambda v: refusal(bool(v)),
        "no_refusal": lambda v: no_refusal(),
        "pii_free": lambda v: pii_free(),
        "semantic_similarity": lambda v: semantic_similarity(
            threshold=float(v), gateway=gateway) if isinstance(v, int | float)
        else semantic_similarity(gateway=gateway, **kw(v)),
    }


CHECK_TYPES = tuple(sorted([*_spec_builders(None), *AGENT_CHECK_TYPES]))


def from_spec(spec: Mapping[str, Any], gateway: Gateway | None = None) -> Check:
    """A check from data: ``{"contains": "x"}`` or ``{"type": "contains", "value": "x"}``
    (see ``CHECK_TYPES``); ``{"all": [...]}`` / ``{"any": [...]}`` / ``{"not": {...}}``."""
    if not isinstance(spec, Mapping) or not spec:
        raise BadRequest(f"a check must be an object like {{\"contains\": \"text\"}}, got {spec!r}")
    if "type" in spec:
        kind, value = str(spec["type"]), spec.get("value", {k: v for k, v in spec.items()
                                                             if k != "type"})
    elif len(spec) == 1:
        kind, value = next(iter(spec.items()))
    else:
        raise BadRequest(f"a check object has one key (its type), got {sorted(spec)}")
    if kind in ("all", "any"):
        if not isinstance(value, list) or not value:
            raise BadRequest(f"'{kind}' needs a non-empty list of checks")
        parts = [from_spec(s, gateway) for s in value]
        return all_of(*parts) if kind == "all" else any_of(*parts)
    if kind == "not":
        return not_(from_spec(value, gateway))
    builders = _spec_builders(gateway)
    if kind in AGENT_CHECK_TYPES:
        from workbench.evals.agent_checks import BUILDERS as AGENT_BUILDERS

        builders = {**builders, **AGENT_BUILDERS}
    if kind not in builders:
        raise BadRequest(f"unknown check type {kind!r}; choose from {', '.join(CHECK_TYPES)}")
    try:
        return builders[kind](value)
    except TypeError as exc:
        raise BadRequest(f"check {kind!r}: bad arguments {value!r} ({exc})") from None


def run_checks(value: Any, checks: Iterable[Check]) -> list[CheckResult]:
    out = as_output(value)
    return [c.fn(out) for c in checks]


__all__ = [
    "CHECK_TYPES", "Check", "CheckResult", "Output", "all_of", "any_of", "as_output", "check",
    "contains", "cosine", "equals", "extract_numbers", "from_spec", "is_refusal", "json_schema",
    "length", "max_cost_usd", "max_latency_ms", "no_refusal", "not_", "not_contains", "numeric",
    "parse_json", "pii_free", "refusal", "regex", "run_checks", "semantic_similarity",
    "starts_with",
]
