"""Reports: a self-contained HTML page (inline CSS and SVG plots, no CDN, works offline
and as a CI artifact), a Markdown summary for a CI job summary, and notebook fragments.

Plots: per-metric score distributions, per-tag breakdown, and run-vs-run bars.
"""

from __future__ import annotations

import html
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from workbench.evals.runs import Comparison, GateResult, MetricSummary, Run

MAX_ROWS = 200

CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;
  color:#1f2328;max-width:1200px}
h1{font-size:22px;margin:0 0 4px}
h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #d0d7de;padding-bottom:4px}
table{border-collapse:collapse;margin:6px 0 12px;font-size:13px}
th,td{border:1px solid #d0d7de;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f6f8fa} td.num{text-align:right;font-variant-numeric:tabular-nums}
.muted{color:#656d76}
.warn{background:#fff8c5;border:1px solid #d4a72c;padding:8px 12px;border-radius:6px;margin:10px 0}
.bad{color:#cf222e;font-weight:600} .good{color:#1a7f37;font-weight:600}
.plots{display:flex;flex-wrap:wrap;gap:16px} .plot{border:1px solid #d0d7de;border-radius:6px;padding:8px}
details{margin:2px 0} code{background:#f6f8fa;padding:1px 4px;border-radius:4px}
.clip{max-width:420px;white-space:pre-wrap;word-break:break-word}
"""


def _e(text: Any) -> str:
    """Escaped for HTML, and PII/secrets masked: a report is an artifact that travels (CI,
    PR comments), and questions, answers, contexts, reasons and even sample ids or tags
    come from data that may hold them."""
    from workbench.guardrails import mask_text

    return html.escape("" if text is None else mask_text(str(text)))


def _num(v: float | None, digits: int = 3) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def _color(v: float | None) -> str:
    """Red (0) -> amber -> green (1), for score cells and bars."""
    if v is None:
        return "#d0d7de"
    v = max(0.0, min(1.0, v))
    r = int(207 + (26 - 207) * v) if v > 0.5 else 207
    g = int(34 + (127 - 34) * min(1.0, v * 2))
    return f"rgb({r},{g},{55 if v > 0.5 else 46})"


def _clip(text: str | None, n: int = 280) -> str:
    from workbench.guardrails import mask_text

    # Masked before the cut: a cut through an email would leave half of it unrecognised.
    flat = mask_text(" ".join((text or "").split()))
    return flat if len(flat) <= n else flat[:n - 1] + "…"


# -- SVG plots -------------------------------------------------------------------------
def svg_bars(rows: Sequence[tuple[str, float | None, float | None]], *, title: str,
             labels: tuple[str, str] = ("A", "B"), width: int = 460) -> str:
    """Horizontal bars in [0, 1]; a second value per row draws a paired bar (run B)."""
    paired = any(b is not None for _, _, b in rows)
    bar_h, gap, left, top = 14, 10, 150, 26
    per = bar_h * (2 if paired else 1) + gap
    height = top + per * len(rows) + 24
    plot_w = width - left - 50
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'role="img" aria-label="{_e(title)}">',
             f'<text x="4" y="16" font-size="13" font-weight="600">{_e(title)}</text>']
    for x in (0.0, 0.5, 1.0):
        px = left + x * plot_w
        parts.append(f'<line x1="{px:.1f}" y1="{top - 4}" x2="{px:.1f}" y2="{height - 20}" '
                     'stroke="#d0d7de" stroke-dasharray="2,2"/>')
        parts.append(f'<text x="{px:.1f}" y="{height - 6}" font-size="10" text-anchor="middle" '
                     f'fill="#656d76">{x:g}</text>')
    for i, (label, a, b) in enumerate(rows):
        y = top + i * per
        parts.append(f'<text x="{left - 6}" y="{y + bar_h - 3}" font-size="11" text-anchor="end">'
                     f'{_e(_clip(label, 24))}</text>')
        for j, v in enumerate((a, b) if paired else (a,)):
            yy = y + j * bar_h
            w = 0 if v is None else max(0.0, min(1.0, v)) * plot_w
            fill = _color(v) if not paired else ("#8c959f" if j == 0 else "#0969da")
            parts.append(f'<rect x="{left}" y="{yy}" width="{w:.1f}" height="{bar_h - 2}" '
                         f'fill="{fill}" rx="2"/>')
            parts.append(f'<text x="{left + w + 4:.1f}" y="{yy + bar_h - 4}" font-size="10">'
                         f'{_num(v, 2)}</text>')
    if paired:
        parts.append(f'<rect x="{width - 120}" y="6" width="10" height="10" fill="#8c959f"/>'
                     f'<text x="{width - 106}" y="15" font-size="10">{_e(labels[0])}</text>'
                     f'<rect x="{width - 60}" y="6" width="10" height="10" fill="#0969da"/>'
                     f'<text x="{width - 46}" y="15" font-size="10">{_e(labels[1])}</text>')
    parts.append("</svg>")
    return "".join(parts)


def svg_histogram(values: Sequence[float], *, title: str, bins: int = 10, width: int = 240,
                  height: int = 120, failed: int = 0) -> str:
    """Score distribution over [0, 1] (values outside are clamped into the end bins)."""
    counts = [0] * bins
    for v in values:
        counts[min(bins - 1, max(0, int(v * bins)))] += 1
    peak = max(counts) or 1
    left, top, bottom = 8, 22, 18
    plot_w, plot_h = width - 2 * left, height - top - bottom
    bw = plot_w / bins
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'role="img" aria-label="{_e(title)}">',
             f'<text x="4" y="14" font-size="12" font-weight="600">{_e(_clip(title, 30))}</text>']
    if failed:
        parts.append(f'<text x="{width - 4}" y="14" font-size="10" text-anchor="end" '
                     f'fill="#cf222e">{failed} failed</text>')
    for i, c in enumerate(counts):
        h = c / peak * plot_h
        x = left + i * bw
        parts.append(f'<rect x="{x + 1:.1f}" y="{top + plot_h - h:.1f}" width="{bw - 2:.1f}" '
                     f'height="{h:.1f}" fill="{_color((i + 0.5) / bins)}"><title>'
                     f'{i / bins:.1f}-{(i + 1) / bins:.1f}: {c}</title></rect>')
    parts.append(f'<line x1="{left}" y1="{top + plot_h}" x2="{width - left}" y2="{top + plot_h}" '
                 'stroke="#8c959f"/>')
    for x in (0.0, 0.5, 1.0):
        parts.append(f'<text x="{left + x * plot_w:.1f}" y="{height - 4}" font-size="10" '
                     f'text-anchor="middle" fill="#656d76">{x:g}</text>')
    parts.append("</svg>")
    return "".join(parts)


# -- HTML pieces -----------------------------------------------------------------------
def _summary_table(summary: Mapping[str, MetricSummary], gate: GateResult | None = None) -> str:
    head = ("<tr><th>metric</th><th>kind</th><th>score</th><th>scored</th><th>failed</th>"
            "<th>skipped</th><th>min</th><th>max</th>" + ("<th>gate</th>" if gate else "") + "</tr>")
    rows = []
    for m, s in summary.items():
        v = s.headline
        cell = (f'<td class="num" style="border-left:6px solid {_color(v)}">{_num(v)}'
                f'{" pass rate" if s.kind == "check" else ""}</td>')
        gate_cell = ""
        if gate:
            ok = gate.per_metric.get(m)
            gate_cell = ("<td></td>" if ok is None else
                         f'<td class="{"good" if ok else "bad"}">{"ok" if ok else "FAIL"}</td>')
        failed = f'<span class="bad">{s.n_failed}</span>' if s.n_failed else "0"
        rows.append(f"<tr><td><b>{_e(m)}</b></td><td>{_e(s.kind)}</td>{cell}"
                    f'<td class="num">{s.n_ok}</td><td class="num">{failed}</td>'
                    f'<td class="num">{s.n_skipped}</td><td class="num">{_num(s.minimum)}</td>'
                    f'<td class="num">{_num(s.maximum)}</td>{gate_cell}</tr>')
    return f"<table>{head}{''.join(rows)}</table>"


def _honesty(run: Run) -> str:
    judge = run.config.get("judge") or {}
    out = []
    if judge.get("warning"):
        out.append(f'<div class="warn"><b>Tiny judge.</b> {_e(judge["warning"])}</div>')
    failed = [s for s in run.failures() if s.kind == "judge"]
    if failed:
        out.append(f'<div class="warn"><b>{len(failed)} judge failure(s).</b> They are listed '
                   'below and excluded from the means (never counted as a score); a gate on '
                   'a metric with failures fails unless failures are allowed.</div>')
    return "".join(out)


def _config_table(run: Run) -> str:
    target = run.config.get("target") or {}
    judge = run.config.get("judge") or {}
    rows = [("dataset", run.dataset_ref), ("samples", len(run.samples))]
    rows += [(f"target.{k}", v) for k, v in target.items()]
    rows += [(f"judge.{k}", judge.get(k)) for k in ("model", "embed_model", "provider",
                                                    "max_tokens", "max_attempts", "timeout_s",
                                                    "concurrency", "max_context_chars", "ragas")
             if judge.get(k) is not None]
    body = "".join(f"<tr><th>{_e(k)}</th><td><code>{_e(v)}</code></td></tr>" for k, v in rows)
    return f"<table>{body}</table>"


def _usage_line(run: Run) -> str:
    u = run.usage
    if not u:
        return ""
    return (f"judge calls {u.get('judge_calls', 0)} · prompt tokens "
            f"{u.get('judge_prompt_tokens', 0)} · completion tokens "
            f"{u.get('judge_completion_tokens', 0)} · cache hits {u.get('cache_hits', 0)} "
            f"(saved {u.get('calls_saved_by_cache', 0)} calls) · target failures "
            f"{u.get('target_failures', 0)} · wall {u.get('wall_s', 0):.1f} s")


def _distributions(run: Run) -> str:
    plots = []
    for m in run.metrics():
        if m == "checks":
            continue
        vals = list(run.values(m).values())
        failed = sum(s.status == "failed" for s in run.scores_of(m))
        plots.append(f'<div class="plot">{svg_histogram(vals, title=m, failed=failed)}</div>')
    summary = run.summary()
    bars = [(m, s.headline, None) for m, s in summary.items()]
    if bars:
        plots.insert(0, f'<div class="plot">{svg_bars(bars, title="mean per metric")}</div>')
    return f'<div class="plots">{"".join(plots)}</div>'


def _by_tag(run: Run) -> str:
    tags = run.by_tag()
    if not tags:
        return "<p class='muted'>no tags</p>"
    metrics = run.metrics()
    head = "<tr><th>tag</th><th>samples</th>" + "".join(f"<th>{_e(m)}</th>" for m in metrics) + "</tr>"
    rows = []
    for tag, per in tags.items():
        n = len({s for s in (r.sample_id for r in run.samples if tag in (r.tags or ["(untagged)"]))})
        cells = "".join(
            f'<td class="num" style="background:{_color(per[m].headline)}22">'
            f'{_num(per[m].headline)}</td>' for m in metrics)
        rows.append(f"<tr><td>{_e(tag)}</td><td class='num'>{n}</td>{cells}</tr>")
    first = next((m for m in metrics if m != "checks"), metrics[0] if metrics else None)
    plot = ""
    if first:
        plot = svg_bars([(t, per[first].headline, None) for t, per in tags.items()],
                        title=f"{first} by tag")
    return f"<table>{head}{''.join(rows)}</table><div class='plot' style='display:inline-block'>{plot}</div>"


def _failures(run: Run) -> str:
    rows = run.failures() + run.failed_checks()
    if not rows:
        return "<p class='good'>No failures and no failed checks.</p>"
    questions = {r.sample_id: r.question for r in run.samples}
    body = "".join(
        f"<tr><td>{_e(s.sample_id)}</td><td class='clip'>{_e(_clip(questions.get(s.sample_id), 120))}</td>"
        f"<td>{_e(s.metric)}</td><td class='bad'>{'failed' if s.status == 'failed' else 'check failed'}"
        f"{' (cached)' if s.cached else ''}</td><td class='clip'>{_e(s.reason)}</td></tr>"
        for s in rows[:MAX_ROWS])
    more = f"<p class='muted'>… {len(rows) - MAX_ROWS} more</p>" if len(rows) > MAX_ROWS else ""
    return ("<table><tr><th>sample</th><th>question</th><th>metric</th><th>what</th>"
            f"<th>reason</th></tr>{body}</table>{more}")


def _samples(run: Run) -> str:
    metrics = [m for m in run.metrics() if m != "checks"]
    index = {(s.sample_id, s.metric): s for s in run.scores}
    head = ("<tr><th>sample</th><th>question / answer</th>"
            + "".join(f"<th>{_e(m)}</th>" for m in metrics) + "<th>checks</th></tr>")
    rows = []
    for r in run.samples[:MAX_ROWS]:
        cells = []
        for m in metrics:
            s = index.get((r.sample_id, m))
            if s is None:
                cells.append("<td></td>")
            elif s.status == "ok":
                cells.append(f'<td class="num" style="background:{_color(s.value)}33">'
                             f"{_num(s.value)}</td>")
            else:
                cls = "bad" if s.status == "failed" else "muted"
                cells.append(f'<td title="{_e(s.reason)}" class="{cls}">{_e(s.status)}</td>')
        checks = [s for s in run.scores if s.kind == "check" and s.sample_id == r.sample_id]
        n_pass = sum(bool(s.passed) for s in checks)
        check_cell = (f'<td class="{"good" if n_pass == len(checks) else "bad"}">{n_pass}/{len(checks)}</td>'
                      if checks else "<td></td>")
        ctx = "".join(f"<li class='clip'>{_e(_clip(c, 400))}</li>" for c in r.contexts)
        answer = (f"<span class='bad'>target failed: {_e(r.error)}</span>" if r.error
                  else _e(_clip(r.answer, 400)))
        rows.append(
            f"<tr><td>{_e(r.sample_id)}<br><span class='muted'>{_e(', '.join(r.tags))}</span></td>"
            f"<td class='clip'><b>{_e(r.question)}</b><br>{answer}"
            f"<details><summary class='muted'>reference, {len(r.contexts)} context(s)</summary>"
            f"<p><i>reference:</i> {_e(_clip(r.reference, 400))}</p><ol>{ctx}</ol></details></td>"
            f"{''.join(cells)}{check_cell}</tr>")
    return f"<table>{head}{''.join(rows)}</table>"


def run_fragment(run: Run) -> str:
    """The run as an HTML fragment (notebooks: ``Run._repr_html_``)."""
    return (f"<div><b>{_e(run.label)}</b> · {_e(run.dataset_ref)} · {len(run.samples)} samples"
            f"{_honesty(run)}{_summary_table(run.summary())}{_distributions(run)}"
            f"<p class='muted'>{_e(_usage_line(run))}</p></div>")


def _page(title: str, body: str) -> str:
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            f"<meta name='viewport' content='width=device-width,initial-scale=1'>"
            f"<title>{_e(title)}</title><style>{CSS}</style></head><body>{body}"
            f"<p class='muted'>generated by genai-workbench evals · "
            f"{html.escape(time.strftime('%Y-%m-%d %H:%M:%S'))}</p></body></html>")


def run_html(run: Run, *, gate: Mapping[str, float] | None = None, allow_failed: float = 0.0,
             comparison: Comparison | None = None) -> str:
    """A self-contained HTML report (no external resources)."""
    created = time.strftime("%Y-%m-%d %H:%M", time.localtime(run.created_at))
    result = run.gate(gate, allow_failed=allow_failed) if gate else None
    verdict = ""
    if result is not None:
        verdict = (f"<p class='{'good' if result.passed else 'bad'}'>Gate "
                   f"{'passed' if result.passed else 'FAILED'}</p><ul>"
                   + "".join(f"<li><code>{_e(line)}</code></li>" for line in result.lines) + "</ul>")
    body = [
        f"<h1>Eval run {_e(run.label)}</h1>",
        f"<p class='muted'>{html.escape(created)} · {_e(run.dataset_ref)} · {len(run.samples)} samples</p>",
        _honesty(run),
        "<h2>Summary</h2>", _summary_table(run.summary(), result), verdict,
        f"<p class='muted'>{_e(_usage_line(run))}</p>",
        "<h2>Score distributions</h2>", _distributions(run),
        "<h2>By tag</h2>", _by_tag(run),
        "<h2>Failures and failed checks</h2>", _failures(run),
        "<h2>Samples</h2>", _samples(run),
        "<h2>Configuration</h2>", _config_table(run),
    ]
    if comparison is not None:
        body += ["<h2>Compared with the baseline</h2>", comparison_fragment(comparison)]
    return _page(f"Eval {run.id}", "".join(body))


def write_report(run: Run, path: str | Path, **kw: Any) -> Path:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() in (".md", ".markdown"):
        out.write_text(run_markdown(run, **{k: v for k, v in kw.items()
                                            if k in ("gate", "allow_failed")}), encoding="utf-8")
    else:
        out.write_text(run_html(run, **kw), encoding="utf-8")
    return out


# -- Markdown --------------------------------------------------------------------------
def _md(text: Any) -> str:
    """One Markdown table cell, PII/secrets masked (see :func:`_e`)."""
    from workbench.guardrails import mask_text

    return mask_text(str(text if text is not None else "")).replace("|", "\\|").replace(
        "\n", " ")


def run_markdown(run: Run, *, gate: Mapping[str, float] | None = None,
                 allow_failed: float = 0.0, max_rows: int = 10) -> str:
    """A short summary for a CI job summary (``$GITHUB_STEP_SUMMARY``) or a PR comment."""
    lines = [f"### Eval `{run.id}`" + (f" ({_md(run.name)})" if run.name else ""),
             f"Dataset `{_md(run.dataset_ref)}` · {len(run.samples)} samples · target "
             f"`{_md((run.config.get('target') or {}).get('kind', '?'))}` · judge "
             f"`{_md((run.config.get('judge') or {}).get('model') or '-')}`", ""]
    warning = (run.config.get("judge") or {}).get("warning")
    if warning:
        lines += [f"> ⚠️ {_md(warning)}", ""]
    lines += ["| metric | score | scored | failed | skipped |", "|---|---:|---:|---:|---:|"]
    for m, s in run.summary().items():
        label = f"{_num(s.headline)}{' pass rate' if s.kind == 'check' else ''}"
        lines.append(f"| {_md(m)} | {label} | {s.n_ok} | {s.n_failed} | {s.n_skipped} |")
    if gate:
        result = run.gate(gate, allow_failed=allow_failed)
        lines += ["", f"**Gate: {'passed ✅' if result.passed else 'FAILED ❌'}**", ""]
        lines += [f"- {_md(line)}" for line in result.lines]
    problems = run.failures() + run.failed_checks()
    if problems:
        lines += ["", f"<details><summary>{len(problems)} failure(s) and failed check(s)</summary>",
                  "", "| sample | metric | reason |", "|---|---|---|"]
        lines += [f"| {_md(s.sample_id)} | {_md(s.metric)} | {_md(_clip(s.reason, 160))} |"
                  for s in problems[:max_rows]]
        if len(problems) > max_rows:
            lines.append(f"| … | {len(problems) - max_rows} more | |")
        lines += ["", "</details>"]
    usage = _usage_line(run)
    if usage:
        lines += ["", f"<sub>{usage}</sub>"]
    return "\n".join(lines) + "\n"


# -- comparisons -----------------------------------------------------------------------
def comparison_fragment(c: Comparison) -> str:
    verdict = (f"<p class='bad'>REGRESSED: {len(c.regressions)} sample regression(s)</p>"
               if c.regressed else "<p class='good'>No regression</p>")
    warn = ("" if c.same_dataset else
            "<div class='warn'>The runs scored different dataset versions; only samples "
            "both scored are compared.</div>")
    rows = "".join(
        f"<tr><td>{_e(d.metric)}</td><td class='num'>{_num(d.mean_a)}</td>"
        f"<td class='num'>{_num(d.mean_b)}</td><td class='num {'bad' if d.regressed else ''}'>"
        f"{'-' if d.delta is None else f'{d.delta:+.3f}'}</td>"
        f"<td class='num'>{d.failed_a} → {d.failed_b}</td></tr>" for d in c.deltas)
    table = ("<table><tr><th>metric</th><th>A</th><th>B</th><th>Δ</th><th>failed</th></tr>"
             f"{rows}</table>")
    plot = svg_bars([(d.metric, d.mean_a, d.mean_b) for d in c.deltas],
                    title="A vs B", labels=("A", "B"))
    changes = "".join(f"<tr><th>{_e(k)}</th><td><code>{_e(a)}</code></td><td><code>{_e(b)}</code></td></tr>"
                      for k, (a, b) in c.config_changes.items())
    if c.prompt_change:
        changes = f"<tr><th colspan='3'>{_e(c.prompt_change)}</th></tr>" + changes
    changes_html = (f"<h3>What changed</h3><table><tr><th></th><th>A</th><th>B</th></tr>{changes}</table>"
                    if changes else "<p class='muted'>Same configuration.</p>")
    reg = "".join(f"<tr><td>{_e(r.sample_id)}</td><td class='clip'>{_e(_clip(r.question, 100))}</td>"
                  f"<td>{_e(r.metric)}</td><td>{_e(r.before)}</td><td class='bad'>{_e(r.after)}</td>"
                  f"<td class='clip'>{_e(r.reason)}</td></tr>" for r in c.regressions[:MAX_ROWS])
    reg_html = (f"<h3>Regressed samples</h3><table><tr><th>sample</th><th>question</th><th>metric</th>"
                f"<th>A</th><th>B</th><th>reason</th></tr>{reg}</table>" if reg else "")
    agree = "".join(f"<tr><td>{_e(m)}</td><td class='num'>{a['n']}</td><td class='num'>"
                    f"{_num(float(a['mae']))}</td><td class='num'>{_num(float(a['agree']), 2)}</td></tr>"
                    for m, a in c.judge_agreement.items())
    agree_html = (f"<h3>Judge agreement (same answers, different judges)</h3><table><tr><th>metric</th>"
                  f"<th>pairs</th><th>mean |Δ|</th><th>same side of 0.5</th></tr>{agree}</table>"
                  if agree else "")
    return (f"<div><p>A = <code>{_e(c.run_a.label)}</code>, B = <code>{_e(c.run_b.label)}</code>, "
            f"tolerance {c.tolerance:g}</p>{verdict}{warn}{table}<div class='plot' "
            f"style='display:inline-block'>{plot}</div>{changes_html}{reg_html}{agree_html}</div>")


def comparison_html(c: Comparison) -> str:
    return _page(f"Compare {c.run_a.id} vs {c.run_b.id}",
                 f"<h1>Eval comparison</h1>{comparison_fragment(c)}")


def comparison_markdown(c: Comparison, max_rows: int = 15) -> str:
    lines = [f"### Eval comparison `{c.run_a.id}` → `{c.run_b.id}`",
             f"**{'REGRESSED ❌' if c.regressed else 'No regression ✅'}** · tolerance {c.tolerance:g}"
             + ("" if c.same_dataset else " · ⚠️ different dataset versions")
             + (f" · {c.prompt_change}" if c.prompt_change else ""), "",
             "| metric | A | B | Δ | failed A→B |", "|---|---:|---:|---:|---:|"]
    for d in c.deltas:
        delta = "-" if d.delta is None else f"{d.delta:+.3f}"
        lines.append(f"| {_md(d.metric)} | {_num(d.mean_a)} | {_num(d.mean_b)} | "
                     f"{delta}{' ❌' if d.regressed else ''} | {d.failed_a}→{d.failed_b} |")
    if c.config_changes:
        lines += ["", "What changed:"]
        lines += [f"- `{k}`: `{_md(a)}` → `{_md(b)}`" for k, (a, b) in c.config_changes.items()]
    if c.regressions:
        lines += ["", "| regressed sample | metric | A | B |", "|---|---|---:|---:|"]
        lines += [f"| {_md(r.sample_id)} | {_md(r.metric)} | {_md(r.before)} | {_md(r.after)} |"
                  for r in c.regressions[:max_rows]]
        if len(c.regressions) > max_rows:
            lines.append(f"| … {len(c.regressions) - max_rows} more | | | |")
    if c.judge_agreement:
        lines += ["", "| judge agreement | pairs | mean abs diff | agree |", "|---|---:|---:|---:|"]
        lines += [f"| {_md(m)} | {a['n']} | {_num(float(a['mae']))} | {_num(float(a['agree']), 2)} |"
                  for m, a in c.judge_agreement.items()]
    return "\n".join(lines) + "\n"


__all__ = ["comparison_html", "comparison_markdown", "run_fragment", "run_html", "run_markdown",
           "svg_bars", "svg_histogram", "write_report"]
