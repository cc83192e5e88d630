"""Side-by-side numbers for several runs: one CSV row per (recipe, round, split) and a
matplotlib figure with one line per recipe for each held-out metric."""
from __future__ import annotations

import csv
import io
from pathlib import Path

from sharpen.rundir import RunDir, atomic_write

METRICS = ("greedy_accuracy", "pass_at_k", "majority_accuracy")


def rows(runs: dict[str, Path]) -> list[dict]:
    out = []
    for name, path in runs.items():
        for m in RunDir(path).metrics():
            for split, s in m["splits"].items():
                out.append({"recipe": name, "round": m["round"], "split": split,
                            **{k: s.get(k) for k in METRICS}, "k": s.get("k"), "n": s.get("n"),
                            "train_samples": m["train"].get("samples", 0), "kept": m["train"].get("kept", 0),
                            "seconds": round(sum(m.get("seconds", {}).values()), 1)})
    return out


AUDIT = ("precision", "recall", "auroc", "auroc_within_prompt", "rewarded_rate", "mean")
FEEDBACK_STATS = ("label_accuracy", "agreement", "reward_accuracy", "cross_agreement", "judge_accuracy", "verdict_mass")


def audit_rows(runs: dict[str, Path]) -> list[dict]:
    """One row per (recipe, round, signal): the signal audit of metrics.json (precision,
    recall and AUROC against the verifier), with the feedback's label statistics."""
    out = []
    for name, path in runs.items():
        for m in RunDir(path).metrics():
            fb = m.get("feedback") or {}
            for signal, a in (m.get("audit") or {}).items():
                stats = fb.get(signal, fb) if isinstance(fb.get(signal), dict) else fb
                out.append({"recipe": name, "round": m["round"], "signal": signal, **{k: a.get(k) for k in AUDIT},
                            "threshold": a.get("threshold"), **{k: stats.get(k) for k in FEEDBACK_STATS}})
    return out


def write_csv(table: list[dict], path: Path) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(table[0]))
    w.writeheader()
    w.writerows(table)
    atomic_write(path, buf.getvalue())


def plot(table: list[dict], path: Path, split: str = "holdout") -> None:
    """One panel per metric, one line per recipe, on `split`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, axes = plt.subplots(1, len(METRICS), figsize=(5 * len(METRICS), 4), sharex=True)
    recipes = list(dict.fromkeys(r["recipe"] for r in table))
    for ax, metric in zip(axes, METRICS):
        for name in recipes:
            pts = [(r["round"], r[metric]) for r in table if r["recipe"] == name and r["split"] == split and r[metric] is not None]
            if pts:
                xs, ys = zip(*pts)
                ax.plot(xs, [100 * y for y in ys], marker="o", label=name)
        k = next((r["k"] for r in table if r["split"] == split), "k")
        ax.set_title(f"{split} {metric.replace('_at_k', f'@{k}').replace('_', ' ')}")
        ax.set_xlabel("round")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel("%")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    atomic_write(path, buf.getvalue())
