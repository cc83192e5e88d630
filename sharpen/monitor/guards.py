"""Guards: monitors that stop a run, or roll it back, when it goes wrong.

- forgetting: an anchor evaluation (another task, or ops/difficulties the run does not
  train on) measured every round from round 0; when it falls more than `margin` below its
  best (or initial) value, the run stops, rolls back to its best round, or only warns.
- reward_hacking: when the training reward is a proxy (anything but the verifier) and the
  task has ground truth, flag a policy whose proxy reward rose while its held-out greedy
  accuracy fell; stop the run or only warn.

Both read earlier rounds from metrics.json only, so a resumed run decides as a straight one.
"""
from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from sharpen.monitor.base import Decision, MonitorConfig, MonitorResult, RoundView, history_values
from sharpen.monitor.metrics import evaluate_split
from sharpen.registry import MONITORS, TASKS
from sharpen.seeds import derive_seed


class ForgettingConfig(MonitorConfig):
    """Anchor evaluation each round; act when it drops more than `margin` below its best."""

    kind: Literal["forgetting"] = "forgetting"
    anchor: dict[str, Any] = Field(..., description="a task block the run does not train on, e.g. {name: arithmetic, ops: [add]}")
    split: Literal["train", "eval", "holdout"] = Field("eval", description="the anchor task's split measured (greedy)")
    n: int = Field(100, gt=0, description="anchor prompts measured each round")
    max_new_tokens: int = Field(32, gt=0)
    margin: float = Field(0.05, ge=0, le=1, description="act when greedy accuracy falls more than this below the reference")
    reference: Literal["best", "initial"] = Field("best", description="compare with the best round so far, or with round 0")
    action: Literal["rollback", "stop", "warn"] = Field(
        "rollback", description="rollback: the next round starts from the best round's checkpoint; stop: end the run; warn: record only")

    @field_validator("anchor")
    @classmethod
    def _task(cls, anchor: dict[str, Any]) -> dict[str, Any]:
        name = anchor.get("name")
        if name not in TASKS.names():
            raise ValueError(f"anchor.name: unknown task {name!r}; one of {', '.join(TASKS.names())}")
        return TASKS.get(str(name)).config.model_validate(anchor).model_dump(mode="json")


def anchor_accuracy(view: RoundView, cfg: ForgettingConfig) -> dict[str, Any]:
    """Greedy accuracy of the current policy (the synced engine) on the anchor prompts."""
    from sharpen.tasks import make_task  # here: importing tasks loads every task module

    task = make_task(cfg.anchor)
    prompts = task.prompts(cfg.split, cfg.n)
    seeds = [derive_seed(view.seed, "anchor", p.id) for p in prompts]
    assert view.engine is not None, "the forgetting guard needs the loop's engine"
    res = evaluate_split(view.engine, task, prompts, k=0, temperature=0.0, max_new_tokens=cfg.max_new_tokens, seeds=seeds)
    return {"anchor_accuracy": res["greedy_accuracy"], "anchor_n": res["n"],
            **({"anchor_by_op": res["greedy_by_op"]} if "greedy_by_op" in res else {})}


def forgetting_decision(now: float, earlier: list[tuple[int, float]], margin: float, reference: str,
                        action: str, r: int) -> tuple[dict[str, Any], Decision | None]:
    """Compare this round's anchor accuracy with the best (latest of ties) or initial earlier one."""
    if not earlier:
        return {}, None
    best_round, best = max(earlier, key=lambda x: (x[1], x[0]))
    ref = best if reference == "best" else earlier[0][1]
    stats = {"reference_accuracy": ref, "best_round": best_round, "drop": ref - now}
    if ref - now <= margin + 1e-12:
        return stats, None
    reason = (f"anchor accuracy {now:.1%} at round {r} is {ref - now:.1%} below its {reference} {ref:.1%} "
              f"(margin {margin:.1%})")
    if action == "rollback":
        return stats, Decision("rollback", reason + f"; next round starts from round {best_round}", "forgetting", best_round)
    return stats, Decision("stop" if action == "stop" else "continue", reason, "forgetting")


@MONITORS.register("forgetting", ForgettingConfig)
def forgetting(view: RoundView, cfg: ForgettingConfig) -> MonitorResult | None:
    """Forgetting guard: anchor accuracy each round; stop or roll back when it drops past a margin."""
    if view.phase != "eval":
        return None
    stats = anchor_accuracy(view, cfg)
    more, decision = forgetting_decision(stats["anchor_accuracy"], history_values(view.history, "forgetting", "anchor_accuracy"),
                                         cfg.margin, cfg.reference, cfg.action, view.round)
    return MonitorResult({**stats, **more}, decision)


class RewardHackingConfig(MonitorConfig):
    """Flag a policy whose proxy reward rose while held-out greedy accuracy fell."""

    kind: Literal["reward_hacking"] = "reward_hacking"
    split: str | None = Field(None, description="held-out split with ground truth (default: the first evaluated)")
    min_rise: float = Field(0.0, ge=0, description="the proxy's mean reward must rise by more than this")
    min_drop: float = Field(0.0, ge=0, description="greedy accuracy must fall by more than this")
    action: Literal["warn", "stop"] = Field("warn", description="stop the run, or only record the flag")


def hacking_check(proxy: list[float | None], greedy: list[float | None], min_rise: float,
                  min_drop: float) -> dict[str, Any] | None:
    """Round r's samples come from the policy of round r-1, so the proxy of policy p is
    proxy[p + 1]; compares the last policy p = len(proxy) - 2 with p - 1 on both signals.
    `proxy[r]` and `greedy[r]` are round r's train reward mean and held-out greedy accuracy."""
    p = len(proxy) - 2
    if p < 1 or None in (proxy[p + 1], proxy[p], greedy[p], greedy[p - 1]):
        return None
    rise, fall = proxy[p + 1] - proxy[p], greedy[p - 1] - greedy[p]  # type: ignore[operator]
    return {"policy_round": p, "proxy_rise": rise, "greedy_fall": fall,
            "flagged": rise > min_rise + 1e-12 and fall > min_drop + 1e-12}


@MONITORS.register("reward_hacking", RewardHackingConfig)
def reward_hacking(view: RoundView, cfg: RewardHackingConfig) -> MonitorResult | None:
    """Reward-hacking guard: proxy reward up while held-out greedy accuracy goes down."""
    if view.phase != "eval" or view.feedback_kind == "verifier" or view.round < 1:
        return None
    split = cfg.split or next(iter(view.metrics.get("splits") or {}), None)
    rounds = [*view.history, view.metrics]
    proxy = [(m.get("train") or {}).get("reward_mean") for m in rounds]
    greedy = [((m.get("splits") or {}).get(split) or {}).get("greedy_accuracy") for m in rounds]
    stats: dict[str, Any] = {"proxy_mean": proxy[-1], "split": split}
    check = hacking_check(proxy, greedy, cfg.min_rise, cfg.min_drop)
    if check is None:
        return MonitorResult(stats)
    stats.update(check)
    if not check["flagged"]:
        return MonitorResult(stats)
    p = check["policy_round"]
    reason = (f"proxy reward ({view.feedback_kind}) rose {check['proxy_rise']:+.3f} for the policy of round {p} "
              f"while {split} greedy accuracy fell {check['greedy_fall']:.1%}")
    return MonitorResult(stats, Decision("stop" if cfg.action == "stop" else "continue", reason, "reward_hacking"))
