"""Learned reward: one reward model, or an ensemble of them (Coste et al., 2023).

    feedback: {kind: reward_model, path: DIR}           # a trained RM, or an ensemble directory
    feedback: {kind: reward_model, paths: [DIR1, DIR2, ...], aggregate: uwo, lam: 0.1}
    feedback: {kind: reward_model, train: {prompts: 500}, ensemble: {k: 5}, aggregate: uwo}

The last form builds the RM inside the run, before round 1, from a labelled budget: the
verifier labels `train.n` samples on each of `train.prompts` train prompts of the starting
policy (`sharpen.reward_models.budget`), and nothing else of the verifier reaches training.

`mean` averages the members' scores; `wco` (worst-case) takes their minimum; `uwo`
(uncertainty-weighted) is mean - lam * variance across members. Coste's code defaults lam
to 0.5 for best-of-N and 0.1 for RL. The verifier still labels every sample (`correct`),
for the monitors and the audit only: the training reward is the RM's. The proxy-vs-gold
statistics (`rm_auroc`, `rm_gold_gap`) are what an overoptimisation guard reads.
"""
from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

from sharpen.errors import UserError
from sharpen.feedback.base import FeedbackConfig
from sharpen.feedback.verifier import relabel, verify
from sharpen.reward_models.ensemble import aggregate, holds_reward_model, member_dirs
from sharpen.registry import FEEDBACK
from sharpen.stats import auroc
from sharpen.types import Context, Rated, Sample


class RMBudget(BaseModel):
    """A reward model trained inside the run: its labelled budget and training knobs."""

    model_config = ConfigDict(extra="forbid")
    prompts: int = Field(500, gt=0, description="train prompts the verifier labels (drawn as round 0's)")
    n: int = Field(8, gt=0, description="samples of the starting policy per prompt")
    loss: Literal["pairwise", "pointwise"] = "pairwise"
    epochs: int = Field(2, gt=0)
    lr: float = Field(1e-4, gt=0)
    batch_size: int = Field(32, gt=0)
    max_pairs_per_prompt: int = Field(4, gt=0)
    heldout: float = Field(0.2, gt=0, lt=1, description="share of the budget's prompts kept to measure the RM")
    label_noise: float = Field(0.0, ge=0, lt=0.5, description="flip this share of labels (a deliberately weak proxy)")
    lora_r: int | None = Field(None, gt=0, description="LoRA rank on a real checkpoint's backbone")


class EnsembleSpec(BaseModel):
    """k members with different seeds and bootstrap samples, or k heads on one frozen backbone."""

    model_config = ConfigDict(extra="forbid")
    k: int = Field(5, ge=1)
    heads: bool = Field(False, description="k heads on one frozen backbone (cheap) instead of k models")
    bootstrap: bool = True


class RewardModelConfig(FeedbackConfig):
    """Reward = a trained reward model's score (`sharpen rm train`), or an ensemble's."""

    default_threshold: ClassVar[float | None] = None  # unbounded scores: audited against the prompt's mean
    kind: Literal["reward_model"] = "reward_model"
    path: str | None = Field(None, description="one reward-model directory (sharpen rm train --out)")
    paths: list[str] = Field(default_factory=list, description="an ensemble's member directories")
    aggregate: Literal["mean", "wco", "uwo"] = Field("mean", description="ensemble: mean, wco (min) or uwo (mean - lam*var)")
    lam: float = Field(0.1, ge=0, description="uwo's weight on the members' variance (Coste: 0.1 for RL, 0.5 for best-of-N)")
    batch_size: int = Field(64, gt=0)
    train: RMBudget | None = Field(None, description="build the RM inside the run from a labelled budget")
    ensemble: EnsembleSpec | None = Field(None, description="build an ensemble inside the run: {k: 5}")
    _built: str | None = PrivateAttr(None)  # the run's own RM directory, once built (sharpen.reward_models.budget)

    @model_validator(mode="after")
    def _members(self) -> "RewardModelConfig":
        given = bool(self.path) + bool(self.paths)
        if given > 1 or (given and (self.train or self.ensemble)):
            raise ValueError("give one of path: DIR, paths: [DIR, ...], or train:/ensemble: (built in the run)")
        if not given and self.train is None:
            self.train = RMBudget()
        for p in self.paths or [self.path] * bool(self.path):
            if not holds_reward_model(p):
                raise ValueError(f"{p} holds no reward model (no sharpen_rm.json); train one with `sharpen rm train`")
        if given:
            same_reader(self.members(), "paths")
        return self

    @property
    def in_run(self) -> bool:
        return self.train is not None

    def members(self) -> list[str]:
        """Every member directory (an ensemble directory is expanded)."""
        roots = [self._built] if self.in_run else [self.path] if self.path else list(self.paths)
        if None in roots:
            raise RuntimeError("the run's reward model is not built yet (sharpen.reward_models.budget.prepare)")
        return [str(m) for r in roots for m in member_dirs(str(r))]


def same_reader(members: list[str], field: str) -> None:
    """One tokenizer and prompt format for every member, checked from their files before any
    weights load: a member reading other text would score something else than the others."""
    def reader(d: str) -> tuple[str, bytes]:
        root = Path(d).expanduser()
        meta = json.loads((root / "sharpen_rm.json").read_text())
        vocab = b"".join((root / f).read_bytes() for f in ("tokenizer.json", "vocab.json") if (root / f).is_file())
        return str(meta.get("prompt_format")), hashlib.sha256(vocab).digest()

    first = reader(members[0])
    for d in members[1:]:
        if reader(d) != first:
            raise ValueError(f"{field}: {d} has another tokenizer or prompt format than {members[0]}; "
                             "train every member on the same backbone")


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


def rm_scores(cfg: RewardModelConfig, prompts: list[str], completions: list[str]) -> list[float]:
    """The aggregate over every member (a k-heads model counts as k members)."""
    rows = [row for m in load_members(cfg) for row in m.score_members(prompts, completions, cfg.batch_size)]
    return aggregate(rows, cfg.aggregate, cfg.lam)


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
