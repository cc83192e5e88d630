"""LLM-as-a-judge feedback (Self-Rewarding, CREAM, SSR-Zero; METHODS §3, §5): a model is asked,
in the task's judge format, whether an answer is correct, and the reward is its *expected*
verdict read from one next-token distribution: P(yes) / (P(yes) + P(no)), or the expected
score over score tokens. Never a parsed sampled number: a sampled score is noisy and, as
the Self-Rewarding reference implementation saw, saturates at full marks.

The judge is the policy itself (`model: policy`, online self-judging), the run's starting
model (`base`), the policy of the previous round (`previous`, CREAM), a local checkpoint
directory, or an OpenAI-compatible server (`openai`: top log-probs of the first token).
"""
from __future__ import annotations

import math
from functools import lru_cache
from typing import Any, Literal, Sequence

import torch
from pydantic import Field, model_validator

from sharpen.feedback.base import FeedbackConfig
from sharpen.feedback.verifier import relabel, verify
from sharpen.registry import FEEDBACK
from sharpen.types import Context, Rated, Sample


class JudgeConfig(FeedbackConfig):
    """Reward = a judge's expected verdict on each sample (label-free when the judge is the policy)."""

    kind: Literal["judge"] = "judge"
    model: str = Field("policy", description="policy | base | previous | a local HF checkpoint directory | openai")
    mode: Literal["yes_prob", "expected_score"] = Field(
        "yes_prob", description="yes_prob: P(yes) / (P(yes) + P(no)); expected_score: E[score] over `scores` tokens, scaled to [0, 1]")
    scores: list[str] = Field(default_factory=lambda: ["1", "2", "3", "4", "5"], description="expected_score: the score strings, lowest first")
    batch_size: int = Field(64, gt=0, description="judge prompts per forward pass")
    base_url: str | None = Field(None, description="openai: the server, e.g. http://127.0.0.1:8000/v1")
    model_name: str | None = Field(None, description="openai: the served model's name")
    api_key: str | None = Field(None, description="openai: API key (default $OPENAI_API_KEY or 'EMPTY')")

    @model_validator(mode="after")
    def _openai_needs_server(self) -> "JudgeConfig":
        if self.model == "openai" and (not self.base_url or not self.model_name):
            raise ValueError("model openai needs base_url and model_name")
        if self.mode == "expected_score" and len(self.scores) < 2:
            raise ValueError("expected_score needs at least two scores")
        return self


def verdict_groups(task: Any, cfg: JudgeConfig) -> list[list[str]]:
    """The candidate strings per outcome: [yes-strings, no-strings], or one group per score."""
    if cfg.mode == "expected_score":
        return [[s] for s in cfg.scores]
    yes, no = getattr(task, "judge_verdicts", (("yes", "Yes", " yes", " Yes"), ("no", "No", " no", " No")))
    return [list(yes), list(no)]


def judge_prompts(task: Any, samples: Sequence[Sample]) -> list[str]:
    fmt = getattr(task, "judge_prompt", None)
    if fmt is None:
        from sharpen.tasks.base import BaseTask

        return [BaseTask.judge_prompt(task, s.prompt, s.text) for s in samples]
    return [fmt(s.prompt, s.text) for s in samples]


def group_probs(policy: Any, texts: list[str], groups: list[list[str]], batch_size: int) -> torch.Tensor:
    """[B, G]: each group's total probability (first tokens of its strings, each token once)."""
    ids = [sorted({policy.encode_completion(v, eos=False)[0] for v in g}) for g in groups]
    flat = [t for g in ids for t in g]
    out = []
    for start in range(0, len(texts), batch_size):
        lp = policy.next_token_logprobs(policy.encode_prompts(texts[start:start + batch_size]), flat).float().exp()
        cols, k = [], 0
        for g in ids:
            cols.append(lp[:, k:k + len(g)].sum(-1))
            k += len(g)
        out.append(torch.stack(cols, -1))
    return torch.cat(out) if out else torch.zeros((0, len(groups)))


def openai_probs(cfg: JudgeConfig, texts: list[str], groups: list[list[str]]) -> torch.Tensor:
    """[B, G] from the server's top-20 log-probs of the first generated token (a token outside
    the top 20 counts as probability 0)."""
    import os

    from openai import OpenAI

    client = OpenAI(base_url=cfg.base_url, api_key=cfg.api_key or os.environ.get("OPENAI_API_KEY") or "EMPTY")
    rows = []
    for text in texts:
        resp = client.completions.create(model=cfg.model_name, prompt=text, max_tokens=1, temperature=0.0, logprobs=20)
        top = (resp.choices[0].logprobs.top_logprobs or [{}])[0] or {}
        rows.append([sum(math.exp(lp) for tok, lp in top.items() if tok in g) for g in groups])
    return torch.tensor(rows, dtype=torch.float32).reshape(len(texts), len(groups))


@lru_cache(maxsize=2)
def _local_judge(path: str) -> Any:
    from sharpen.policy import Policy

    return Policy.load(path)


def judge_model(cfg: JudgeConfig, ctx: Context) -> Any:
    if cfg.model == "policy":
        return ctx.policy
    if cfg.model in ("base", "previous"):
        return ctx.reference(cfg.model)
    return _local_judge(cfg.model)


def rewards_from(probs: torch.Tensor, cfg: JudgeConfig) -> tuple[list[float], list[float]]:
    """(rewards in [0, 1], the mass on verdict tokens); no mass at all -> 0.5 (no opinion)."""
    mass = probs.sum(-1)
    norm = probs / mass.clamp(min=1e-30).unsqueeze(-1)
    if cfg.mode == "yes_prob":
        reward = norm[:, 0]
    else:
        k = torch.arange(probs.shape[-1], dtype=torch.float32)
        reward = (norm * k).sum(-1) / (probs.shape[-1] - 1)
    reward = torch.where(mass > 0, reward, torch.full_like(reward, 0.5))
    return reward.tolist(), mass.tolist()


@FEEDBACK.register("judge", JudgeConfig)
def judge(samples: list[Sample], cfg: JudgeConfig, ctx: Context) -> Rated:
    """LLM-as-a-judge: reward = the judge's P(yes) (or expected score) for each sample."""
    scored = verify(samples, ctx.task)
    texts = judge_prompts(ctx.task, samples)
    groups = verdict_groups(ctx.task, cfg)
    if cfg.model == "openai":
        probs = openai_probs(cfg, texts, groups)
    else:
        probs = group_probs(judge_model(cfg, ctx), texts, groups, cfg.batch_size)
    rewards, mass = rewards_from(probs, cfg)
    scored = relabel(scored, rewards, cfg.signal_name())
    stats: dict[str, float] = {"verdict_mass": sum(mass) / max(len(mass), 1),
                               "no_verdict": sum(m <= 0 for m in mass) / max(len(mass), 1),
                               "mean_reward": sum(rewards) / max(len(rewards), 1)}
    known = [s for s in scored if s.correct is not None]
    if known:
        stats["judge_accuracy"] = sum((s.reward > 0.5) == bool(s.correct) for s in known) / len(known)
    return Rated(scored, stats)
