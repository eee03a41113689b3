"""The pytest plugin: registered by entry point, fixtures work, and failures print the
failing samples with reasons."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]


def test_plugin_is_registered_by_entry_point(pytestconfig: pytest.Config) -> None:
    assert pytestconfig.pluginmanager.has_plugin("workbench_evals")


def test_failures_show_failing_samples_and_reasons(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_team_evals="""
        from workbench.evals import checks as c
        from workbench.evals.pytest_plugin import assert_eval

        def test_answer():
            assert_eval("I don't know, email bob@example.com",
                        checks=[c.no_refusal(), c.pii_free(), c.contains("keys create")])

        def test_gate(eval_run):
            eval_run("sample", metrics=["rouge"], fail_under={"rouge": 0.95, "checks": 0.5})

        def test_passing_gate(eval_run, golden):
            ds = golden("sample").filter(tags=["setup"])
            run = eval_run(ds, metrics=["exact_match"], fail_under={"checks": 1.0})
            assert run.summary()["checks"].pass_rate == 1.0
        """)
    # A child process: an in-process run drops the modules it imported when it ends, and
    # C extensions (numpy, under rouge_score) cannot be imported twice in one process.
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--eval-report", "reports")
    result.assert_outcomes(passed=1, failed=2)
    out = result.stdout.str()
    assert "3 of 3 eval assertion(s) failed" in out
    assert "FAIL no_refusal: refusal phrase" in out and "FAIL pii_free: found EMAILx1" in out
    assert "failed its gate" in out and "FAIL rouge: mean" in out
    assert "audit-verify [rouge] 0.000" in out  # the failing sample, its score
    assert "How can I check that nobody edited the audit log?" in out
    reports = sorted(p.name for p in (pytester.path / "reports").iterdir())
    assert len(reports) == 2 and all(r.endswith(".html") for r in reports)


def test_the_plugin_is_light_to_load() -> None:
    """It loads in every pytest session of every team: no SQLAlchemy, ragas or openai."""
    import subprocess
    import sys

    code = ("import sys, workbench.evals.pytest_plugin; print(','.join(m for m in "
            "('sqlalchemy', 'ragas', 'openai', 'numpy', 'workbench.store') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_public_names_resolve() -> None:
    from workbench import evals

    assert set(evals.__all__) == {*evals._EXPORTS, "checks", "list_runs", "load_run"}
    for name in evals.__all__:
        assert getattr(evals, name) is not None
