"""The typer app every command registers on, its consoles, and the per-round table."""
from __future__ import annotations

from typing import Any

import typer
from rich.console import Console
from rich.table import Table

# the names only, for --help (importing sharpen.select would load torch before every command)
SELECT_METHODS = ("greedy", "vote", "certainty", "borda", "likelihood", "judge", "rm", "rm_vote", "prm", "verifier")

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="sharpen: self-improving language models, one recipe per paper.")
console = Console()
err = Console(stderr=True)


def say(msg: str) -> None:
    console.print(msg, highlight=False, soft_wrap=True, markup=False)


def pct(x: Any) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def metrics_table(metrics: list[dict], title: str, split: str = "holdout", control: list[dict] | None = None) -> Table:
    """Round vs held-out accuracy (and the supervised control, when given)."""
    t = Table(title=title)
    k = next((m["splits"][split].get("k") for m in metrics if split in m["splits"]), 8)
    sampled = (f"pass@{k}", f"maj@{k}") if k else ()  # eval.k=0 measures greedy only
    for col in ("round", f"{split} greedy", *sampled, "kept", "seconds"):
        t.add_column(col, justify="right")
    if control is not None:
        t.add_column("control greedy", justify="right")
    for i, m in enumerate(metrics):
        s = m["splits"].get(split, {})
        row = [str(m["round"]), pct(s.get("greedy_accuracy")),
               *((pct(s.get("pass_at_k")), pct(s.get("majority_accuracy"))) if k else ()),
               str(m["train"].get("kept", "-")), f"{sum(m['seconds'].values()):.0f}"]
        if control is not None:
            row.append(pct(control[i]["splits"].get(split, {}).get("greedy_accuracy")) if i < len(control) else "-")
        t.add_row(*row)
    return t
