"""Running the recipe's monitors: the default set, one call per phase, the loop's verdict.

The loop calls `run_monitors` after the builder and after evaluation; stats go to
metrics.json under `monitors.<kind>` and every decision (with its reason) under
`decisions`. `verdict` turns a round's decisions into what the loop does next (stop beats
rollback beats continue), read from metrics.json so a resumed run does the same.
"""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError

from sharpen.errors import UserError
from sharpen.monitor.base import Decision, MonitorResult, RoundView
from sharpen.registry import MONITORS

DEFAULT_MONITORS = ("exploration", "exploitation", "balance", "data_yield", "training", "reward_hacking")


def validate_monitors(entries: list[Any], source: str = "recipe") -> list[BaseModel]:
    """The default set with the recipe's entries merged in by kind (an entry replaces the
    default of its kind; `enabled: false` turns one off); one-line error naming the field."""
    by_kind: dict[str, BaseModel] = {k: MONITORS.get(k).config() for k in DEFAULT_MONITORS}
    for i, entry in enumerate(entries):
        if isinstance(entry, BaseModel):
            by_kind[str(getattr(entry, "kind"))] = entry
            continue
        if isinstance(entry, str):
            entry = {"kind": entry}
        if not isinstance(entry, dict) or "kind" not in entry:
            raise UserError(f"{source}: monitors.{i}: expected a mapping with kind: (got {entry!r})",
                            field=f"monitors.{i}", detail="expected a mapping with kind:")
        try:
            cfg = MONITORS.get(str(entry["kind"])).config
        except KeyError:
            detail = f"unknown monitor {entry['kind']!r}; one of {', '.join(MONITORS.names())}"
            raise UserError(f"{source}: monitors.{i}.kind: {detail}", field=f"monitors.{i}.kind", detail=detail) from None
        try:
            by_kind[str(entry["kind"])] = cfg.model_validate(entry)
        except ValidationError as err:
            e = err.errors()[0]
            field = ".".join(["monitors", str(i), *(str(x) for x in e["loc"])])
            msg = "unknown key (check the spelling)" if e["type"] == "extra_forbidden" else e["msg"].removeprefix("Value error, ")
            raise UserError(f"{source}: {field}: {msg}", field=field, detail=msg) from None
    return list(by_kind.values())


def run_monitors(configs: list[BaseModel], view: RoundView) -> tuple[dict[str, Any], list[Decision]]:
    """Every enabled monitor on one phase of one round: ({kind: stats}, decisions)."""
    stats: dict[str, Any] = {}
    decisions: list[Decision] = []
    for cfg in configs:
        if not getattr(cfg, "enabled", True):
            continue
        kind = str(getattr(cfg, "kind"))
        out = MONITORS.get(kind).fn(view, cfg)
        if out is None:
            continue
        res = out if isinstance(out, MonitorResult) else MonitorResult(dict(out))
        if res.stats:
            stats[kind] = res.stats
        if res.decision is not None:
            decisions.append(res.decision)
    return stats, decisions


def merge(into: dict[str, Any], more: dict[str, Any]) -> dict[str, Any]:
    """Merge a phase's {kind: stats} into the round's."""
    for kind, s in more.items():
        into.setdefault(kind, {}).update(s)
    return into


def verdict(metrics: dict[str, Any] | None) -> dict[str, Any] | None:
    """What a complete round asks of the next one: its strongest decision (stop > rollback),
    or None to go on from its own checkpoint."""
    decisions = (metrics or {}).get("decisions") or []
    for action in ("stop", "rollback"):
        for d in decisions:
            if d.get("action") == action:
                return d
    return None


def start_round(metrics: dict[str, Any] | None, r: int) -> int:
    """The round whose checkpoint round r starts from: r - 1, or the rollback's target."""
    v = verdict(metrics)
    return int(v["to_round"]) if v and v["action"] == "rollback" else r - 1


def _pct(x: Any) -> str:
    return f"{100 * x:.0f}%" if isinstance(x, (int, float)) else "-"


def _num(x: Any, fmt: str = ".2f") -> str:
    return format(x, fmt) if isinstance(x, (int, float)) else "-"


def monitor_line(m: dict[str, Any]) -> str:
    """A compact per-round line of the monitors for the terminal."""
    mon = m.get("monitors") or {}
    parts = []
    ex = mon.get("exploration")
    if ex:
        parts.append(f"pass@{ex.get('k', '-')} {_pct(ex.get('pass_at_k'))} distinct-correct {_num(ex.get('distinct_correct_per_prompt'), '.1f')} "
                     f"H(answer) {_num(ex.get('answer_entropy'))} distinct-2 {_num(ex.get('distinct_2'))}")
    pr = mon.get("exploration_probe")
    if pr:
        parts.append(f"probe T {pr.get('temperature')}: pass@{pr.get('k', '-')} {_pct(pr.get('pass_at_k'))} "
                     f"distinct answers {_num(pr.get('distinct_answers_per_prompt'), '.1f')} H(answer) {_num(pr.get('answer_entropy'))}")
    sel, bal = mon.get("exploitation"), mon.get("balance")
    if sel or bal:
        parts.append(f"precision {_pct((sel or {}).get('precision'))} recall {_pct((sel or {}).get('recall'))} "
                     f"balance {_num((bal or {}).get('balance_score'), '.3f')}")
    y = mon.get("data_yield")
    if y:
        parts.append(f"kept/prompt {_num(y.get('kept_per_prompt'), '.1f')} none {_pct(y.get('prompts_without_data'))}")
    t = mon.get("training")
    if t:
        parts.append(f"loss {_num(t.get('loss'), '.3f')} len {_num(t.get('response_tokens'), '.1f')}"
                     + (f" kl {_num(t.get('kl'), '.4f')}" if "kl" in t else ""))
    if "forgetting" in mon:
        parts.append(f"anchor {_pct(mon['forgetting'].get('anchor_accuracy'))}")
    a = m.get("adapt")
    if a:
        parts.append(f"T {a['temperature']} threshold {a['threshold']}")
    line = f"round {m['round']} monitors | " + " | ".join(parts) if parts else ""
    for d in m.get("decisions") or []:
        line += f"\n  {d['monitor']}: {d['action']}: {d['reason']}"
    return line
