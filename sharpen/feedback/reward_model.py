"""Learned reward: one reward model, or an ensemble of them (Coste et al., 2023).

    feedback: {kind: reward_model, path: DIR}
    feedback: {kind: reward_model, paths: [DIR1, DIR2, ...], aggregate: uwo, lam: 0.1}

`mean` averages the members' scores; `wco` (worst-case) takes their minimum; `uwo`
(uncertainty-weighted) is mean - lam * variance across members. Coste's code defaults lam
to 0.5 for best-of-N and 0.1 for RL. The verifier still labels every sample (`correct`),
for the monitors and the audit only: the training reward is the RM's. The proxy-vs-gold
statistics (`rm_auroc`, `rm_gold_gap`) are what an overoptimisation guard reads.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from sharpen.errors import UserError
from sharpen.feedback.base import FeedbackConfig
from sharpen.feedback.verifier import relabel, verify
from sharpen.registry import FEEDBACK
from sharpen.stats import auroc
from sharpen.types import Context, Rated, Sample


class RewardModelConfig(FeedbackConfig):
    """Reward = a trained reward model's score (`sharpen rm train`), or an ensemble's."""

    default_threshold: ClassVar[float | None] = None  # unbounded scores: audited against the prompt's mean
    kind: Literal["reward_model"] = "reward_model"
    path: str | None = Field(None, description="one reward-model directory (sharpen rm train --out)")
    paths: list[str] = Field(default_factory=list, description="an ensemble's member directories")
    aggregate: Literal["mean", "wco", "uwo"] = Field("mean", description="ensemble: mean, wco (min) or uwo (mean - lam*var)")
    lam: float = Field(0.1, ge=0, description="uwo's weight on the members' variance (Coste: 0.1 for RL, 0.5 for best-of-N)")
    batch_size: int = Field(64, gt=0)

    @model_validator(mode="after")
    def _members(self) -> "RewardModelConfig":
        if bool(self.path) == bool(self.paths):
            raise ValueError("give path: DIR (one reward model) or paths: [DIR, ...] (an ensemble), not both or neither")
        for p in self.members():
            if not (Path(p).expanduser() / "sharpen_rm.json").is_file():
                raise ValueError(f"{p} holds no reward model (no sharpen_rm.json); train one with `sharpen rm train`")
        return self

    def members(self) -> list[str]:
        return [self.path] if self.path else list(self.paths)


@lru_cache(maxsize=16)
def _load(path: str, mtime: float) -> Any:
    from sharpen.reward_models.model import RewardModel

    return RewardModel.load(path, field="feedback.path")


def load_members(cfg: RewardModelConfig) -> list[Any]:
    """The members, once per process (a directory rewritten since is loaded again); one
    tokenizer for all, or a member could be scoring other text than the others."""
    models = [_load(str(Path(p).expanduser()), (Path(p).expanduser() / "sharpen_rm.json").stat().st_mtime)
              for p in cfg.members()]
    first = models[0].tokenizer.get_vocab()
    for p, m in zip(cfg.members()[1:], models[1:]):
        if m.tokenizer.get_vocab() != first or m.prompt_format != models[0].prompt_format:
            raise UserError(f"feedback.paths: {p} has another tokenizer or prompt format than {cfg.members()[0]}; "
                            "train every member on the same backbone")
    return models


def ensemble(scores: list[list[float]], how: str, lam: float) -> list[float]:
    """[members][samples] -> [samples]: mean, wco (min) or uwo (mean - lam * population variance)."""
    out = []
    for column in zip(*scores):
        mean = sum(column) / len(column)
        if how == "wco":
            out.append(min(column))
        elif how == "uwo":
            out.append(mean - lam * sum((x - mean) ** 2 for x in column) / len(column))
        else:
            out.append(mean)
    return out


def rm_scores(cfg: RewardModelConfig, prompts: list[str], completions: list[str]) -> list[float]:
    members = load_members(cfg)
    return ensemble([m.score(prompts, completions, cfg.batch_size) for m in members], cfg.aggregate, cfg.lam)


@FEEDBACK.register("reward_model", RewardModelConfig)
def reward_model(samples: list[Sample], cfg: RewardModelConfig, ctx: Context) -> Rated:
    """The RM's (or ensemble's) score; the verifier's label kept for monitoring only."""
    scored = verify(samples, ctx.task)
    rewards = rm_scores(cfg, [s.prompt.text for s in samples], [s.completion.text for s in samples])
    relabel(scored, rewards, cfg.signal_name())
    gold = [s.correct for s in scored]
    stats: dict[str, Any] = {"members": len(cfg.members())}
    if all(g is not None for g in gold) and gold:
        stats["rm_auroc"] = auroc(rewards, [bool(g) for g in gold])
        top = sorted(range(len(rewards)), key=lambda i: -rewards[i])[: max(1, len(rewards) // 4)]
        stats["rm_top_quarter_gold"] = sum(bool(gold[i]) for i in top) / len(top)  # gold rate of what the RM likes most
        stats["rm_gold_gap"] = stats["rm_top_quarter_gold"] - sum(bool(g) for g in gold) / len(gold)
    return Rated(scored, stats)
