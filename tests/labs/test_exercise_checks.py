"""Every exercise's check rejects plausible wrong and faked answers.

Each lab keeps its checkers' tests next to them (marimo test cells, ``test_*``). This file
finds every ``labkit.Exercise(...)`` in every lab, the checker it uses, and requires at
least one test cell that feeds that checker a wrong answer and asserts it is not accepted
(``assert not check_x(...).ok``); then it runs those cells. A new exercise without a
wrong-answer test fails here, and so does a checker that starts accepting one.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.labs.labs_support import PYTHON, REPO, lab_files, run, tail


@dataclass(frozen=True)
class Case:
    lab: Path
    number: str
    checker: str
    tests: tuple[str, ...]  # test cells with `assert not checker(...).ok`


def _checker_of(call: ast.Call) -> str | None:
    check = next((k.value for k in call.keywords if k.arg == "check"), None)
    if isinstance(check, ast.Name):
        return check.id
    if isinstance(check, ast.Lambda) and isinstance(check.body, ast.Call) \
            and isinstance(check.body.func, ast.Name):
        return check.body.func.id
    return None


def _rejections(fn: ast.FunctionDef) -> set[str]:
    """Checkers that ``fn`` asserts do not accept an answer: ``assert not c(...).ok``, or
    ``v = c(...)`` then ``assert not v.ok ...``."""
    results = {t.id: node.value.func.id for node in ast.walk(fn)
               if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)
               and isinstance(node.value.func, ast.Name)
               for t in node.targets if isinstance(t, ast.Name)}
    out = set()
    for node in ast.walk(fn):
        if not isinstance(node, ast.Assert):
            continue
        for sub in ast.walk(node.test):
            if isinstance(sub, ast.UnaryOp) and isinstance(sub.op, ast.Not) \
                    and isinstance(sub.operand, ast.Attribute) and sub.operand.attr == "ok":
                target = sub.operand.value
                if isinstance(target, ast.Call) and isinstance(target.func, ast.Name):
                    out.add(target.func.id)
                elif isinstance(target, ast.Name) and target.id in results:
                    out.add(results[target.id])
    return out


def cases() -> list[Case]:
    found = []
    for lab in lab_files():
        tree = ast.parse(lab.read_text(encoding="utf-8"))
        tests = {fn.name: _rejections(fn) for fn in tree.body
                 if isinstance(fn, ast.FunctionDef) and fn.name.startswith("test_")}
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                    and node.func.attr == "Exercise" and node.args \
                    and isinstance(node.args[0], ast.Constant):
                checker = _checker_of(node) or "?"
                found.append(Case(lab, str(node.args[0].value), checker,
                                  tuple(t for t, rejects in tests.items() if checker in rejects)))
    return found


CASES = cases()


def test_every_lab_has_exercises_and_every_exercise_a_checker() -> None:
    assert {c.lab.stem for c in CASES} == {p.stem for p in lab_files()}
    assert len(CASES) >= 27
    assert all(c.checker.startswith("check_") for c in CASES), [c for c in CASES
                                                                  if c.checker == "?"]


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.number}-{c.checker}")
def test_exercise_has_a_wrong_answer_test(case: Case) -> None:
    assert case.tests, (f"exercise {case.number} ({case.lab.name}): no test cell asserts that "
                        f"{case.checker} rejects a wrong answer (assert not {case.checker}(...).ok)")


@pytest.mark.slow
@pytest.mark.parametrize("lab", lab_files(), ids=lambda p: p.stem)
def test_wrong_answer_tests_pass(lab: Path) -> None:
    """Run those test cells (marimo's pytest integration supplies their cell inputs)."""
    names = sorted({t for c in CASES if c.lab == lab for t in c.tests})
    assert names, lab.name
    proc = run([PYTHON, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(REPO),
                str(lab), "-k", " or ".join(names)], cwd=REPO, timeout=900)
    assert proc.returncode == 0, tail(proc)
    assert f"{len(names)} passed" in proc.stdout, tail(proc)


def test_the_scan_finds_a_missing_wrong_answer_test() -> None:
    """The scan is real: a test cell that only checks right answers does not count."""
    tree = ast.parse("def test_x():\n    assert check_a(1).ok\n    assert not check_b(2).ok\n"
                     "    v = check_c(3)\n    assert not v.ok and 'x' in v.message\n"
                     "    w = check_d(4)\n    assert w.ok\n")
    fn = tree.body[0]
    assert isinstance(fn, ast.FunctionDef)
    assert _rejections(fn) == {"check_b", "check_c"}
