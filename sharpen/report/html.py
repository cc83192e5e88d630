"""report.html: a run's record for a person - the recipe, a per-round table and the
held-out curves, in one self-contained file (the plot is embedded as a PNG)."""
from __future__ import annotations

import base64
import html
import tempfile
from pathlib import Path

from sharpen.report.compare import AUDIT, METRICS, audit_rows, plot, rows
from sharpen.rundir import RunDir, atomic_write


def _png(table: list[dict]) -> str:
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "curves.png"
        plot(table, out)
        return base64.b64encode(out.read_bytes()).decode()


def write_report(run_dir: str | Path) -> Path:
    """(Re)write run_dir/report.html from config.yaml and every complete round."""
    rd = RunDir(run_dir)
    name = rd.path.name
    table = rows({name: rd.path})
    head = "".join(f"<th>{h}</th>" for h in ("round", "split", *METRICS, "kept", "seconds"))
    body = "".join(
        "<tr>" + "".join(f"<td>{c}</td>" for c in (
            r["round"], r["split"], *(f"{100 * r[m]:.1f}%" if r[m] is not None else "-" for m in METRICS),
            r["kept"], r["seconds"])) + "</tr>" for r in table)
    audit = audit_rows({name: rd.path})
    audit_html = ""
    if audit:
        cols = ("round", "signal", *AUDIT, "label_accuracy", "agreement")
        cell = lambda v: "-" if v is None else (f"{v:.3f}" if isinstance(v, float) else html.escape(str(v)))  # noqa: E731
        audit_html = ("<h2>Signal audit (against the verifier)</h2><table><tr>" + "".join(f"<th>{c}</th>" for c in cols)
                      + "</tr>" + "".join("<tr>" + "".join(f"<td>{cell(r.get(c))}</td>" for c in cols) + "</tr>" for r in audit)
                      + "</table>")
    config = html.escape(rd.config_path.read_text()) if rd.config_path.exists() else ""
    img = f'<img src="data:image/png;base64,{_png(table)}" style="max-width:100%">' if table else ""
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>sharpen: {html.escape(name)}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1100px}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}pre{{background:#f6f6f6;padding:1em}}</style></head>
<body><h1>{html.escape(name)}</h1>{img}<h2>Per round</h2><table><tr>{head}</tr>{body}</table>
{audit_html}<h2>Recipe (config.yaml)</h2><pre>{config}</pre></body></html>"""
    path = rd.path / "report.html"
    atomic_write(path, page)
    return path
