"""LLM-as-a-judge feedback (Self-Rewarding, CREAM, SSR-Zero): a model is asked,
in the task's judge format, whether an answer is correct, and the reward is its *expected*
verdict read from one next-token distribution: P(yes) / (P(yes) + P(no)), or the expected
score over score tokens. Never a parsed sampled number: a sampled score is noisy and, as
the Self-Rewarding reference implementation saw, saturates at full marks.

The judge is the policy itself (`model: policy`, online self-judging), the run's starting
model (`base`), the policy of the previous round (`previous`, CREAM), a local checkpoint
directory, or an OpenAI-compatible server (`openai`: top log-probs of its first token).
"""
from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, Sequence

import torch
from pydantic import Field, field_validator, model_validator

from sharpen.engines.openai_client import ApiKey, check_env_name, guarded, key_from_env, make_client
from sharpen.errors import UserError
from sharpen.feedback.base import FeedbackConfig
from sharpen.feedback.verifier import relabel, verify
from sharpen.registry import FEEDBACK
from sharpen.tasks.base import GENERIC_VERDICTS, generic_judge_prompt
from sharpen.types import Context, Rated, Sample

NAMED_JUDGES = ("policy", "base", "previous", "openai")
TOP_LOGPROBS = 20  # what OpenAI-compatible servers return at most for one position


class JudgeConfig(FeedbackConfig):
    """Reward = a judge's expected verdict on each sample (label-free when the judge is the policy)."""

    kind: Literal["judge"] = "judge"
    model: str = Field("policy", description="policy | base | previous | a local HF checkpoint directory | openai")
    mode: Literal["yes_prob", "expected_score"] = Field(
        "yes_prob", description="yes_prob: P(yes) / (P(yes) + P(no)); expected_score: E[score] over `scores` tokens, scaled to [0, 1]")
    scores: list[str] = Field(default_factory=lambda: ["1", "2", "3", "4", "5"],
                              description="expected_score: the score strings, lowest first (each must start with its own token)")
    batch_size: int = Field(64, gt=0, description="judge prompts per forward pass (local judges)")
    device: str = Field("auto", description="checkpoint judge: where it runs (auto, cpu, cuda, cuda:N)")
    dtype: str = Field("auto", description="checkpoint judge: float32, bfloat16 or auto")
    base_url: str | None = Field(None, description="openai: the server's API root, e.g. http://127.0.0.1:8000/v1")
    model_name: str | None = Field(None, description="openai: the served model's name")
    api_key: ApiKey = Field(None, description="openai: the API key; never written (config.yaml holds null), so a resumed "
                                              "run needs it again (default: $OPENAI_API_KEY, else 'EMPTY')")
    api_key_env: str | None = Field(None, description="openai: the environment variable holding the key, e.g. MY_KEY "
                                                      "(the name is written, the value read at load)")
    concurrency: int = Field(8, gt=0, description="openai: requests in flight")

    _env_name = field_validator("api_key_env")(check_env_name)

    @model_validator(mode="after")
    def _judge_exists(self) -> "JudgeConfig":
        if self.model == "openai" and (not self.base_url or not self.model_name):
            raise ValueError("model openai needs base_url and model_name")
        self.api_key = key_from_env(self.api_key, self.api_key_env, used=self.model == "openai", section="feedback")
        if self.model not in NAMED_JUDGES and not Path(self.model).expanduser().is_dir():
            raise ValueError(f"{self.model!r} is neither {', '.join(NAMED_JUDGES)} nor a checkpoint directory")
        if self.mode == "expected_score" and (len(self.scores) < 2 or len(set(self.scores)) < len(self.scores)):
            raise ValueError("expected_score needs at least two distinct scores")
        if any(not s for s in self.scores):
            raise ValueError("scores must be non-empty strings")
        return self


def verdict_groups(task: Any, cfg: JudgeConfig) -> list[list[str]]:
    """The candidate strings per outcome: [yes strings, no strings], or one group per score."""
    if cfg.mode == "expected_score":
        return [[s] for s in cfg.scores]
    yes, no = getattr(task, "judge_verdicts", GENERIC_VERDICTS)
    return [list(yes), list(no)]


def judge_prompts(task: Any, samples: Sequence[Sample]) -> list[str]:
    """The task's judge format for each sample; a task without one gets the generic prompt."""
    fmt = getattr(task, "judge_prompt", None)
    if not callable(fmt):
        return [generic_judge_prompt(s.prompt, s.text) for s in samples]
    return [fmt(s.prompt, s.text) for s in samples]


def candidate_ids(policy: Any, groups: list[list[str]]) -> list[list[int]]:
    """First token of each verdict string, deduplicated within a group. A token that starts
    strings of two groups (" yes" and " no" under a character tokenizer: " ") says nothing
    about the verdict and is dropped; a group left with no token is an error."""
    ids = [{policy.encode_completion(v, eos=False)[0] for v in g if v} for g in groups]
    shared = {t for i, g in enumerate(ids) for h in ids[i + 1:] for t in g & h}
    out = [sorted(g - shared) for g in ids]
    for g, kept in zip(groups, out):
        if not kept:
            raise UserError(f"feedback.judge: every verdict in {g} starts with a token another verdict starts with too; "
                            "use verdict or score strings whose first tokens differ", field="feedback.scores")
    return out


def group_probs(policy: Any, texts: list[str], groups: list[list[str]], batch_size: int) -> torch.Tensor:
    """[B, G] on CPU: each group's total probability under `policy` (the first tokens of its
    strings, each token once), batched by prompt length so padding stays small."""
    ids = candidate_ids(policy, groups)
    flat = [t for g in ids for t in g]
    encoded = policy.encode_prompts(texts) if texts else []
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
    out = torch.zeros((len(texts), len(groups)))
    for start in range(0, len(order), batch_size):
        rows = order[start:start + batch_size]
        p = policy.next_token_logprobs([encoded[i] for i in rows], flat).float().exp().cpu()
        cols, k = [], 0
        for g in ids:
            cols.append(p[:, k:k + len(g)].sum(-1))
            k += len(g)
        out[torch.tensor(rows, dtype=torch.long)] = torch.stack(cols, -1)
    return out


def openai_probs(cfg: JudgeConfig, texts: list[str], groups: list[list[str]]) -> torch.Tensor:
    """[B, G] from the server's top-20 log-probs of the first generated token (max_tokens 1,
    temperature 0). A verdict counts when a top token is exactly one of its strings; a token
    outside the top 20 counts as probability 0."""
    client = make_client(str(cfg.base_url), cfg.api_key, timeout=60.0, max_retries=2, field="feedback")
    owner = {v: k for k, g in enumerate(groups) for v in g}

    def one(text: str) -> list[float]:
        resp = guarded(client, lambda: client.completions.create(
            model=cfg.model_name, prompt=text, max_tokens=1, temperature=0.0, logprobs=TOP_LOGPROBS),
            section="feedback", model=str(cfg.model_name), model_field="model_name")
        lp = resp.choices[0].logprobs if resp.choices else None
        top = (lp.top_logprobs or [None])[0] if lp is not None else None
        row = [0.0] * len(groups)
        for tok, value in (top or {}).items():
            if tok in owner and value is not None:
                row[owner[tok]] += math.exp(float(value))
        return row

    try:
        with ThreadPoolExecutor(max_workers=min(cfg.concurrency, max(1, len(texts)))) as pool:
            rows = list(pool.map(one, texts))
    finally:
        client.close()
    return torch.tensor(rows, dtype=torch.float32).reshape(len(texts), len(groups))


@lru_cache(maxsize=2)
def _checkpoint_judge(path: str, device: str, dtype: str) -> Any:
    """A checkpoint judge, loaded once per process (every round reuses it)."""
    from sharpen.policy import Policy

    return Policy.load(path, device=device, dtype=dtype)


def judge_model(cfg: JudgeConfig, ctx: Context) -> Any:
    """The local model that judges: the policy, a frozen reference, or a checkpoint."""
    if cfg.model == "policy":
        return ctx.policy
    if cfg.model in ("base", "previous"):
        return ctx.reference(cfg.model)
    return _checkpoint_judge(str(Path(cfg.model).expanduser().resolve()), cfg.device, cfg.dtype)


def rewards_from(probs: torch.Tensor, cfg: JudgeConfig) -> tuple[list[float], list[float]]:
    """(rewards in [0, 1], the mass on verdict tokens) from [B, G] group probabilities.

    yes_prob: P(yes) / (P(yes) + P(no)); expected_score: (E[k] - 1) / (G - 1) with E over
    the renormalised score distribution, k = 1..G. No mass at all -> 0.5 (no opinion)."""
    mass = probs.sum(-1)
    norm = probs / mass.clamp(min=1e-30).unsqueeze(-1)
    if cfg.mode == "yes_prob":
        reward = norm[:, 0]
    else:
        k = torch.arange(probs.shape[-1], dtype=torch.float32)
        reward = (norm * k).sum(-1) / (probs.shape[-1] - 1)
    reward = torch.where(mass > 0, reward, torch.full_like(reward, 0.5)).clamp(0.0, 1.0)
    return reward.tolist(), mass.tolist()


def judge_probs(cfg: JudgeConfig, ctx: Context, texts: list[str], groups: list[list[str]]) -> torch.Tensor:
    if cfg.model == "openai":
        return openai_probs(cfg, texts, groups)
    return group_probs(judge_model(cfg, ctx), texts, groups, cfg.batch_size)


@FEEDBACK.register("judge", JudgeConfig)
def judge(samples: list[Sample], cfg: JudgeConfig, ctx: Context) -> Rated:
    """LLM-as-a-judge: reward = the judge's P(yes) (or expected score) for each sample.

    Statistics: `verdict_mass` (mean probability on verdict tokens: does the judge follow the
    format at all), `no_verdict` (share with none of it: reward 0.5), `mean_p_yes` (or
    `mean_score`), and where the task has ground truth `judge_accuracy` (reward > 0.5 ==
    correct)."""
    scored = verify(samples, ctx.task)
    probs = judge_probs(cfg, ctx, judge_prompts(ctx.task, samples), verdict_groups(ctx.task, cfg))
    rewards, mass = rewards_from(probs, cfg)
    scored = relabel(scored, rewards, cfg.signal_name())
    n = max(len(samples), 1)
    stats: dict[str, float] = {"verdict_mass": sum(mass) / n, "no_verdict": sum(m <= 0 for m in mass) / n,
                               "mean_p_yes" if cfg.mode == "yes_prob" else "mean_score": sum(rewards) / n}
    known = [s for s in scored if s.correct is not None]
    if known:
        stats["judge_accuracy"] = sum((s.reward > 0.5) == bool(s.correct) for s in known) / len(known)
    return Rated(scored, stats)
