"""The run's reports: Markdown (for a PR or a release note) and one self-contained HTML file.

The HTML embeds its plots as base64 PNGs (matplotlib, Agg backend) and its styles inline: it opens
from an e-mail attachment or an artefact store with no network. Both name every failed scenario
with what failed, so a red gate says why.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

from ari_agent.evaluation.metrics import Metrics
from ari_agent.evaluation.run import RunResult, SuiteResult

HEADLINE = ("pass_rate", "intent_success", "transfer_correctness", "containment", "policy_violations", "mean_turns")
COLUMNS = ("pass_rate", "intent_success", "intent_recognition", "outcome_accuracy", "transfer_correctness",
           "containment", "policy_violations", "mean_turns")


def fmt(name: str, value: float | None) -> str:
    if value is None:
        return "–"
    if name == "policy_violations":
        return str(int(value))
    if name == "mean_turns":
        return f"{value:.1f}"
    return f"{100 * value:.1f}%"


def overall(result: RunResult) -> Metrics:
    from ari_agent.evaluation.metrics import compute

    return compute([v for s in result.suites for v in s.verdicts])


def markdown(result: RunResult) -> str:
    out: list[str] = [f"# Evaluation report ({result.mode} mode)", "",
                      f"Run {result.started_at:%Y-%m-%d %H:%M} UTC, classifier: {result.classifier}"
                      + (", **kill switch forced on**" if result.kill_switch else ""), ""]
    gate = result.gate_failures
    out += ["**Gate: " + ("PASSED**" if not gate else f"FAILED** ({len(gate)})"), ""]
    out += [f"- {f}" for f in gate]
    if gate:
        out.append("")
    total = overall(result)
    out += [f"## Headline ({total.scenarios} scenarios, {total.passed} passed)", "",
            "| " + " | ".join(HEADLINE) + " |", "|" + "---|" * len(HEADLINE),
            "| " + " | ".join(fmt(k, total.get(k)) for k in HEADLINE) + " |", ""]
    out += ["## Suites", "", "| suite | gated | scenarios | " + " | ".join(COLUMNS) + " |",
            "|---|---|---|" + "---|" * len(COLUMNS)]
    for s in result.suites:
        out.append(f"| {s.suite.name} | {'yes' if s.suite.spec.gated else 'no'} | {s.metrics.scenarios} | "
                   + " | ".join(fmt(k, s.metrics.get(k)) for k in COLUMNS) + " |")
    out.append("")
    for s in result.suites:
        out += [f"## {s.suite.name}: per intent", "", f"Map `{s.map_path.name}` (version {s.config_version}).", "",
                "| intent | scenarios | " + " | ".join(COLUMNS) + " |", "|---|---|" + "---|" * len(COLUMNS)]
        for name, m in s.per_intent.items():
            out.append(f"| {name} | {m.scenarios} | " + " | ".join(fmt(k, m.get(k)) for k in COLUMNS) + " |")
        out.append("")
        out += speech_markdown(s)
        failed = [v for v in s.verdicts if not v.passed]
        if failed:
            out += [f"### {s.suite.name}: failed scenarios", ""]
            for v in failed:
                out.append(f"- **{v.scenario.id}**: " + "; ".join(v.failures))
            out.append("")
    return "\n".join(out) + "\n"


def speech_markdown(s: SuiteResult) -> list[str]:
    """Audio mode: the same scenarios by text and by voice, latency per stage, WER, per voice."""
    out: list[str] = []
    if s.text_metrics is not None:
        out += [f"### {s.suite.name}: text mode vs audio mode (the same {s.metrics.scenarios} scenarios)", "",
                "| mode | passed | " + " | ".join(COLUMNS) + " |", "|---|---|" + "---|" * len(COLUMNS)]
        for mode, m in (("text", s.text_metrics), ("audio", s.metrics)):
            out.append(f"| {mode} | {m.passed}/{m.scenarios} | " + " | ".join(fmt(k, m.get(k)) for k in COLUMNS)
                       + " |")
        out.append("")
    sp = s.speech
    if sp is None:
        return out
    wer = "–" if sp.wer is None else f"{100 * sp.wer:.1f}% ({sp.wer_ref_words} reference words)"
    out += [f"### {s.suite.name}: speech", "", f"Recognition WER: {wer}.", "",
            "| stage | p50 ms | p95 ms | n |", "|---|---|---|---|"]
    out += [f"| {stage} | {f['p50']:.0f} | {f['p95']:.0f} | {int(f['n'])} |" for stage, f in sp.latency_ms.items()]
    out += ["", "| voice | scenarios | passed | WER |", "|---|---|---|---|"]
    out += [f"| {voice} | {f['scenarios']} | {f['passed']} | {fmt('wer', _float(f['wer']))} |"
            for voice, f in sp.per_voice.items()]
    if sp.not_played:
        out += ["", "Not played by voice:"] + [f"- {k}: {why}" for k, why in sp.not_played.items()]
    return [*out, ""]


def _float(v: float | int | None) -> float | None:
    return None if v is None else float(v)


def html_report(result: RunResult) -> str:
    md_gate = result.gate_failures
    total = overall(result)
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>ari-agent evaluation</title>",
        "<style>body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px}table{border-collapse:collapse;"
        "margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}td:first-child,th:first-child"
        "{text-align:left}.fail{color:#b00}.pass{color:#070}details{margin:.3em 0}pre{background:#f6f6f6;"
        "padding:.5em;overflow-x:auto}</style></head><body>",
        f"<h1>Evaluation report ({html.escape(result.mode)} mode)</h1>",
        f"<p>Run {result.started_at:%Y-%m-%d %H:%M} UTC, classifier {html.escape(result.classifier)}"
        + (", <b>kill switch forced on</b>" if result.kill_switch else "") + "</p>",
        "<h2 class='" + ("pass'>Gate passed" if not md_gate else f"fail'>Gate failed ({len(md_gate)})") + "</h2>",
    ]
    if md_gate:
        parts.append("<ul>" + "".join(f"<li>{html.escape(str(f))}</li>" for f in md_gate) + "</ul>")
    parts.append(f"<h2>Headline: {total.scenarios} scenarios, {total.passed} passed</h2>")
    parts.append(_table(["metric", "value"], [[k, fmt(k, total.get(k))] for k in HEADLINE]))
    parts.append(_table(["suite", "gated", "scenarios", *COLUMNS],
                        [[s.suite.name, "yes" if s.suite.spec.gated else "no", str(s.metrics.scenarios),
                          *(fmt(k, s.metrics.get(k)) for k in COLUMNS)] for s in result.suites]))
    for title, png in _plots(result):
        parts.append(f"<h3>{html.escape(title)}</h3><img alt='{html.escape(title)}' "
                     f"src='data:image/png;base64,{base64.b64encode(png).decode()}'>")
    for s in result.suites:
        parts.append(f"<h2>{html.escape(s.suite.name)}</h2><p>{html.escape(s.suite.spec.description)}</p>")
        parts.append(_table(["intent", "scenarios", *COLUMNS],
                            [[n, str(m.scenarios), *(fmt(k, m.get(k)) for k in COLUMNS)]
                             for n, m in s.per_intent.items()]))
        speech = speech_markdown(s)
        if speech:
            parts.append("<pre>" + html.escape("\n".join(speech)) + "</pre>")
        for v in s.verdicts:
            cls = "pass" if v.passed else "fail"
            why = "" if v.passed else " — " + html.escape("; ".join(v.failures))
            parts.append(f"<details><summary class='{cls}'>{html.escape(v.scenario.id)}: "
                         f"{'pass' if v.passed else 'FAIL'}{why}</summary>"
                         f"<pre>{html.escape(chr(10).join(v.trace.transcript))}</pre></details>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_reports(result: RunResult, out_dir: Path) -> dict[str, Path]:
    import json

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"markdown": out_dir / "report.md", "html": out_dir / "report.html", "json": out_dir / "results.json"}
    paths["markdown"].write_text(markdown(result), encoding="utf-8")
    paths["html"].write_text(html_report(result), encoding="utf-8")
    paths["json"].write_text(json.dumps(result.to_json(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return paths


def _table(head: list[str], rows: list[list[str]]) -> str:
    th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{th}</tr>{body}</table>"


def _plots(result: RunResult) -> list[tuple[str, bytes]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out: list[tuple[str, bytes]] = []
    rates = ("pass_rate", "intent_success", "transfer_correctness", "containment")
    fig, ax = plt.subplots(figsize=(9, 3.5))
    width = 0.8 / max(1, len(result.suites))
    for i, s in enumerate(result.suites):
        vals = [100 * (s.metrics.get(k) or 0.0) for k in rates]
        ax.bar([x + i * width for x in range(len(rates))], vals, width, label=s.suite.name)
    ax.set_xticks([x + width * (len(result.suites) - 1) / 2 for x in range(len(rates))], rates)
    ax.set_ylabel("%")
    ax.set_ylim(0, 105)
    ax.legend(fontsize=8)
    out.append(("Rates per suite", _png(fig, plt)))

    intents: dict[str, list[float]] = {}
    for s in result.suites:
        for name, m in s.per_intent.items():
            intents.setdefault(name, []).extend([1.0] * m.passed + [0.0] * (m.scenarios - m.passed))
    fig, ax = plt.subplots(figsize=(9, 3.5))
    names = sorted(intents)
    ax.barh(names, [100 * sum(intents[n]) / len(intents[n]) for n in names])
    ax.set_xlabel("scenarios passed (%)")
    ax.set_xlim(0, 105)
    out.append(("Pass rate per intent (all suites)", _png(fig, plt)))

    turns = [v.trace.turns for s in result.suites for v in s.verdicts]
    engine = [ms for s in result.suites for v in s.verdicts for ms in v.trace.stage_ms.get("engine", [])]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3))
    a1.hist(turns, bins=range(0, max(turns, default=0) + 2))
    a1.set_xlabel("caller turns per call")
    a2.hist(engine, bins=30)
    a2.set_xlabel("engine time per event (ms)")
    out.append(("Turns and engine time", _png(fig, plt)))
    return out


def _png(fig: object, plt: object) -> bytes:
    buf = io.BytesIO()
    fig.tight_layout()  # type: ignore[attr-defined]
    fig.savefig(buf, format="png", dpi=90)  # type: ignore[attr-defined]
    plt.close(fig)  # type: ignore[attr-defined]
    return buf.getvalue()
