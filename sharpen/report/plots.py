"""Figures for report.html: small panels of per-round curves, one line per run (or per
run and signal), returned as base64 PNG so the page needs nothing from the network."""
from __future__ import annotations

import base64
import io
from typing import Any, Callable, Sequence

Series = dict[str, list[tuple[int, float]]]  # line label -> (round, value) points
Getter = Callable[[dict[str, Any]], Any]


def series(runs: dict[str, list[dict[str, Any]]], get: Getter) -> Series:
    """One line per run: (round, get(metrics)) for every round where it is a number."""
    out: Series = {}
    for name, ms in runs.items():
        pts = [(m["round"], float(v)) for m in ms if isinstance(v := _safe(get, m), (int, float)) and not isinstance(v, bool)]
        if pts:
            out[name] = pts
    return out


def _safe(get: Getter, m: dict[str, Any]) -> Any:
    try:
        return get(m)
    except (KeyError, TypeError, AttributeError):
        return None


def panels_png(panels: Sequence[tuple[str, Series, bool]], events: dict[str, list[int]] | None = None,
               ncols: int = 3) -> str | None:
    """A grid of panels (title, lines, as_percent); dashed verticals at guard-event rounds.
    None when no panel has data."""
    panels = [p for p in panels if p[1]]
    if not panels:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    ncols = min(ncols, len(panels))
    nrows = (len(panels) + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.6 * ncols, 3.3 * nrows), squeeze=False)
    labels = list(dict.fromkeys(label for _, lines, _ in panels for label in lines))
    colors = {label: f"C{i % 10}" for i, label in enumerate(labels)}
    for ax, (title, lines, pct) in zip(axes.flat, panels):
        for label, pts in lines.items():
            xs, ys = zip(*pts)
            ax.plot(xs, [100 * y for y in ys] if pct else ys, marker="o", ms=3, label=label, color=colors[label])
        for label, rounds in (events or {}).items():
            for r in rounds:
                ax.axvline(r, color=colors.get(label, "red"), ls="--", lw=0.8, alpha=0.7)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("round", fontsize=8)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.tick_params(labelsize=8)
        if pct:
            ax.set_ylabel("%", fontsize=8)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()
