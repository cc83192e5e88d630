"""report.html: one or more runs' record for a person, in one self-contained file.

Sections: held-out accuracy and pass@k per split; exploration and exploitation (the
monitors); signal quality (the audit of label-free rewards, where the run has one); guard
events; a table of rounds; the resolved recipes. Plots are embedded PNGs and the page
loads nothing from the network. Several run directories overlay as `compare` does.
"""
from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

from sharpen.report.plots import Getter, panels_png, series
from sharpen.rundir import RunDir, atomic_write

METRICS = ("greedy_accuracy", "pass_at_k", "majority_accuracy")
EXPLORATION: tuple[tuple[str, Getter, bool], ...] = (
    ("train pass@k", lambda m: m["monitors"]["exploration"]["pass_at_k"], True),
    ("distinct correct per prompt", lambda m: m["monitors"]["exploration"]["distinct_correct_per_prompt"], False),
    ("answer entropy (nats)", lambda m: m["monitors"]["exploration"]["answer_entropy"], False),
    ("distinct-2 of completions", lambda m: m["monitors"]["exploration"]["distinct_2"], False),
    ("sampling temperature (adapt)", lambda m: m["adapt"]["temperature"], False),
    ("probe pass@k (fixed T)", lambda m: m["monitors"]["exploration_probe"]["pass_at_k"], True),
    ("probe distinct answers (fixed T)", lambda m: m["monitors"]["exploration_probe"]["distinct_answers_per_prompt"], False),
    ("probe answer entropy (fixed T)", lambda m: m["monitors"]["exploration_probe"]["answer_entropy"], False),
    ("mean response tokens", lambda m: m["monitors"]["training"]["response_tokens"], False),
)
EXPLOITATION: tuple[tuple[str, Getter, bool], ...] = (
    ("precision of kept samples", lambda m: m["monitors"]["exploitation"]["precision"], True),
    ("recall of correct samples", lambda m: m["monitors"]["exploitation"]["recall"], True),
    ("balance score", lambda m: m["monitors"]["balance"]["balance_score"], False),
    ("kept per prompt", lambda m: m["monitors"]["data_yield"]["kept_per_prompt"], False),
    ("prompts with no data", lambda m: m["monitors"]["data_yield"]["prompts_without_data"], True),
    ("training loss", lambda m: m["train"]["loss"], False),
    ("reward threshold (adapt)", lambda m: m["adapt"]["threshold"], False),
    ("anchor accuracy (forgetting guard)", lambda m: m["monitors"]["forgetting"]["anchor_accuracy"], True),
    ("KL to reference", lambda m: m["monitors"]["training"]["kl"], False),
)
AUDIT = ("precision", "recall", "auroc", "auroc_within_prompt")


def _img(png: str | None, alt: str) -> str:
    return f'<img alt="{alt}" src="data:image/png;base64,{png}">' if png else "<p>(no data yet)</p>"


def _cell(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3f}"
    return html.escape(str(v))


def _table(cols: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = "".join("<tr>" + "".join(f"<td>{_cell(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def events(runs: dict[str, list[dict[str, Any]]]) -> list[list[Any]]:
    """(run, round, monitor, action, reason) of every recorded decision."""
    return [[name, m["round"], d.get("monitor"), d.get("action") + (f" to round {d['to_round']}" if "to_round" in d else ""),
             d.get("reason")] for name, ms in runs.items() for m in ms for d in m.get("decisions") or []]


def _accuracy(runs: dict[str, list[dict[str, Any]]]) -> str:
    splits = list(dict.fromkeys(s for ms in runs.values() for m in ms for s in m["splits"]))
    panels = []
    for split in splits:
        for metric in METRICS:
            k = next((m["splits"][split].get("k") for ms in runs.values() for m in ms if split in m["splits"]), "k")
            title = f"{split} {metric.replace('_at_k', f'@{k}').replace('majority_accuracy', f'maj@{k}').replace('_', ' ')}"
            panels.append((title, series(runs, lambda m, s=split, x=metric: m["splits"][s][x]), True))
    return _img(panels_png(panels, _event_rounds(runs)), "accuracy")


def _event_rounds(runs: dict[str, list[dict[str, Any]]]) -> dict[str, list[int]]:
    return {name: [m["round"] for m in ms if any(d.get("action") != "continue" for d in m.get("decisions") or [])]
            for name, ms in runs.items()}


def _audit(runs: dict[str, list[dict[str, Any]]]) -> str:
    signals = list(dict.fromkeys(sig for ms in runs.values() for m in ms for sig in (m.get("audit") or {})))
    if not signals:
        return ""
    panels = []
    for key in AUDIT:
        lines = {}
        for sig in signals:
            for name, pts in series(runs, lambda m, s=sig, k=key: m["audit"][s][k]).items():
                lines[f"{name}: {sig}" if len(runs) > 1 else sig] = pts
        panels.append((f"signal {key.replace('_', ' ')}", lines, key in ("precision", "recall")))
    png = panels_png(panels, ncols=4)
    return f"<h2>Signal quality (audit against the verifier)</h2>{_img(png, 'signal quality')}" if png else ""


def _rounds_table(runs: dict[str, list[dict[str, Any]]]) -> str:
    cols = ["run", "round", "split", *METRICS, "kept", "loss", "explore pass@k", "balance", "T", "threshold", "seconds"]
    rows = []
    for name, ms in runs.items():
        for m in ms:
            mon, a = m.get("monitors") or {}, m.get("adapt") or {}
            for split, s in m["splits"].items():
                rows.append([name, m["round"], split, *(s.get(x) for x in METRICS), m["train"].get("kept"), m["train"].get("loss"),
                             (mon.get("exploration") or {}).get("pass_at_k"), (mon.get("balance") or {}).get("balance_score"),
                             a.get("temperature"), a.get("threshold"), round(sum((m.get("seconds") or {}).values()), 1)])
    return _table(cols, rows)


STYLE = """body{font-family:sans-serif;margin:1.5em;max-width:1400px}table{border-collapse:collapse;font-size:13px}
td,th{border:1px solid #ccc;padding:2px 7px;text-align:right}pre{background:#f6f6f6;padding:1em;font-size:12px}
img{max-width:100%}.event{color:#a00}"""


# `api_key: <anything but null>` in block style, as yaml.safe_dump writes config.yaml
_KEY_LINE = re.compile(r"^(\s*(?:-\s+)?api_key:)[ \t]*(?!null[ \t]*$)\S.*$", re.MULTILINE)


def _config_text(path: Path) -> str:
    """config.yaml as shown: runs written before keys were dropped from it may still hold one."""
    return _KEY_LINE.sub(r"\1 null  # (a key; not shown)", path.read_text()) if path.exists() else ""


def render(run_dirs: dict[str, Path]) -> str:
    """The page for runs {label: run directory}."""
    runs = {name: RunDir(p).metrics() for name, p in run_dirs.items()}
    title = ", ".join(run_dirs)
    ev = events(runs)
    guard = _table(["run", "round", "monitor", "decision", "reason"], ev) if ev else "<p>No guard fired.</p>"
    configs = "".join(
        f"<details{' open' if len(run_dirs) == 1 else ''}><summary>{html.escape(name)}: config.yaml</summary>"
        f"<pre>{html.escape(_config_text(RunDir(p).config_path))}</pre></details>"
        for name, p in run_dirs.items())
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>sharpen: {html.escape(title)}</title>
<style>{STYLE}</style></head><body><h1>sharpen report: {html.escape(title)}</h1>
<h2>Held-out accuracy and pass@k</h2>{_accuracy(runs)}
<h2>Exploration (the round's own samples)</h2>{_img(panels_png([(t, series(runs, g), p) for t, g, p in EXPLORATION], _event_rounds(runs)), "exploration")}
<h2>Exploitation and training</h2>{_img(panels_png([(t, series(runs, g), p) for t, g, p in EXPLOITATION], _event_rounds(runs)), "exploitation")}
{_audit(runs)}<h2>Guard events</h2>{guard}
<h2>Rounds</h2>{_rounds_table(runs)}
<h2>Resolved recipe</h2>{configs}</body></html>"""


def labels(paths: list[Path]) -> dict[str, Path]:
    """Unique labels for run directories: their names, with parents where names repeat."""
    names = [p.resolve().name for p in paths]
    out = {}
    for p, n in zip(paths, names):
        label = n if names.count(n) == 1 else f"{p.resolve().parent.name}/{n}"
        out[label] = p
    return out


def write_report(run_dir: str | Path | list[str | Path], out: str | Path | None = None) -> Path:
    """(Re)write report.html for one run (default: inside it) or several (default: ./report.html)."""
    paths = [Path(p) for p in (run_dir if isinstance(run_dir, list) else [run_dir])]
    path = Path(out) if out else (paths[0] / "report.html" if len(paths) == 1 else Path("report.html"))
    atomic_write(path, render(labels(paths)))
    return path
