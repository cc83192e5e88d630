"""`sharpen seed`: train the built-in tiny model from scratch to *partial* competence.

STaR-style methods only amplify what the model has begun to learn (benchmarks/seed_calibration.py: a
seed with 0-7% on addition gained +1 point), and a from-scratch model's accuracy jumps
within ~50 steps at a point that varies by seed. So seeding runs a fixed, deterministic
step schedule (never a time budget): check greedy accuracy every `check_every` steps,
stop at the first check inside the band with every op started; if a check overshoots
the band, rewind to the previous check (weights and optimizer) and replay that interval
with finer checks. The result is cached per (task config, seed config, seed).

Learning rate (measured with benchmarks/seed_calibration.py and one-variable runs on
2 loaded cores): constant AdamW 3e-3 left addition at 0-2% until ~1250 steps (seed 0:
1350 steps); 1e-2 with 100-step warmup was worse (loss stuck ~1.1 at 400 steps);
5e-4 was slower. Constant 1e-3 put seeds 0, 1, 2 in band at 400 steps (~60 s), both
ops rising together: the higher rate was too high, not too low.

The judge format (Self-Rewarding's EFT data; tasks with a format of their own: arithmetic).
Each step adds `judge_fraction` of judge examples, half gold -> "y", half corrupted -> "n"
(`Task.judge_examples`, other train problems than the step's solve batch), and the loss is
(1 - f) * solve + f * verdict NLL. Measured on seeds 0 / 1 (2 shared cores; judge metrics on
the seed's own 4 samples at T 0.8 of the 300 check prompts):
f 0: 400 / 350 steps, 37 / 32 s (no judge). f 1/3 (default): 360 / 450 steps, 31 / 33%
greedy, ~60 s, judge AUROC 0.67 / 0.74, gold-vs-corrupted 70%. f 1/5: judge AUROC 0.50 /
0.40 (no judge at all). f 1/2: 500 / 400 steps, 150 / 310 s, AUROC 0.65 / 0.74 (no better).
Adding f to the solve loss unweighted (1 + 1) instead slowed seed 1 to 600 steps.
"""
from __future__ import annotations

import copy
import hashlib
import json
import random
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field

from sharpen.engines.hf import HFEngine
from sharpen.objectives.sft import sft_loss
from sharpen.objectives.trainer import fit, lr_factor
from sharpen.paths import cache_root
from sharpen.policy.tiny import new_tiny_policy
from sharpen.registry import TASKS
from sharpen.rundir import atomic_dir
from sharpen.tasks import make_task
from sharpen.tasks.base import has_judge_format
from sharpen.seeds import derive_seed
from sharpen.types import ProgressFactory, Sample, SamplingParams, Task

SEED_ROUND_BASE = 1_000_000  # seed batches use train-split rounds far from the loop's
JUDGE_ROUND_BASE = 2_000_000  # and the judge examples other rounds again (other problems)
JUDGE_CHECK_SAMPLES = 4  # own samples per eval prompt when the seed is measured as a judge


class SeedConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    lr: float = Field(1e-3, gt=0, description="AdamW peak learning rate (3e-3 stalled addition for ~1250 steps)")
    warmup_steps: int = Field(0, ge=0, description="linear warmup (objectives.trainer.lr_factor)")
    weight_decay: float = Field(0.0, ge=0)
    batch_size: int = Field(128, gt=0)
    max_steps: int = Field(4000, gt=0)
    check_every: int = Field(50, gt=0)
    fine_every: int = Field(10, gt=0)
    check_n: int = Field(300, gt=0, description="eval prompts per accuracy check")
    band: tuple[float, float] = (0.20, 0.50)
    min_op_accuracy: float = Field(0.10, ge=0, description="every op must reach this (STaR needs a foothold)")
    max_new_tokens: int = 32
    judge_fraction: float = Field(
        1 / 3, ge=0, lt=1, description="share of each step's examples that teach the task's judge format (half gold -> yes, "
                                       "half corrupted -> no), on top of the batch_size solve examples; only for tasks "
                                       "with a judge format of their own (arithmetic); 0 turns it off")


# Per-task schedule overrides, measured for each built-in task (the defaults above are
# arithmetic's). A task missing here seeds with SeedConfig's defaults.
TASK_SEED_DEFAULTS: dict[str, dict[str, Any]] = {
    # code solves level 1 by step 100 (copying f(0)) but level 2 (a*x+b: a = f(1)-f(0)) only
    # starts at ~400-500 steps; the band's floor and the 10% per-level minimum wait for it, so
    # STaR has a foothold on every level (seeds 0 / 1: 500 / 550 steps, eval 42.7 / 41.0%)
    "code": {"band": (0.30, 0.45)},
    # a 6-step chain is 53 characters ("a74+8=55\n" a step)
    "chain": {"max_new_tokens": 64},
}


def seed_key(task_cfg: dict[str, Any], cfg: SeedConfig, seed: int) -> str:
    blob = json.dumps({"task": task_cfg, "seed_cfg": cfg.model_dump(mode="json"), "seed": seed, "v": 5}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def _check(policy: Any, task: Task, cfg: SeedConfig) -> tuple[float, dict[str, float]]:
    """Greedy accuracy on eval prompts, overall and per op, through the built-in engine."""
    prompts = task.prompts("eval", cfg.check_n)
    engine = HFEngine(policy, batch_size=128)
    params = SamplingParams(n=1, temperature=0.0, max_new_tokens=cfg.max_new_tokens)
    outs = [g[0].text for g in engine.generate([p.text for p in prompts], params, [0] * len(prompts))]
    scores = task.score_batch(prompts, outs)
    by_op: dict[str, list[float]] = {}
    for p, s in zip(prompts, scores):
        by_op.setdefault(str(p.meta.get("op", "all")), []).append(float(s >= 1.0))
    acc = sum(s >= 1.0 for s in scores) / len(scores)
    return acc, {op: sum(v) / len(v) for op, v in sorted(by_op.items())}


def judge_steps(cfg: SeedConfig) -> int:
    """Judge examples per step: `judge_fraction` of the step's examples (an even number: pairs)."""
    if cfg.judge_fraction <= 0:
        return 0
    return 2 * max(1, round(cfg.batch_size * cfg.judge_fraction / (1 - cfg.judge_fraction) / 2))


def judge_batch(task: Any, seed: int, step: int, cfg: SeedConfig) -> list[tuple[str, str]]:
    """Step `step`'s (judge prompt, verdict) examples: a function of (seed, step) alone, so a
    rewind replays them exactly."""
    prompts = task.prompts("train", judge_steps(cfg) // 2, round=JUDGE_ROUND_BASE + step)
    return task.judge_examples(prompts, random.Random(derive_seed(seed, "seed-judge", step)))


def judge_report(policy: Any, task: Task, cfg: SeedConfig, seed: int) -> dict[str, Any]:
    """The seed as a judge of its OWN samples (4 at temperature 0.8 per eval check prompt, the
    distribution self-rewarding recipes judge): accuracy of P(yes) > 0.5 against the verifier
    and AUROC of P(yes), overall and per op; plus accuracy on the balanced gold-vs-corrupted
    set of those prompts (the format it was taught, with negatives it was not shown)."""
    from sharpen.feedback.judge import JudgeConfig, group_probs, judge_prompts, rewards_from, verdict_groups
    from sharpen.stats import auroc

    prompts = task.prompts("eval", cfg.check_n)
    params = SamplingParams(n=JUDGE_CHECK_SAMPLES, temperature=0.8, max_new_tokens=cfg.max_new_tokens)
    groups = HFEngine(policy, batch_size=128).generate([p.text for p in prompts], params,
                                                       [derive_seed(seed, "judge-check", p.id) for p in prompts])
    samples = [Sample(p, c, i) for p, g in zip(prompts, groups) for i, c in enumerate(g)]
    correct = [s >= 1.0 for s in task.score_batch([s.prompt for s in samples], [s.text for s in samples])]
    jcfg = JudgeConfig()
    verdicts = verdict_groups(task, jcfg)
    p_yes, _ = rewards_from(group_probs(policy, judge_prompts(task, samples), verdicts, 128), jcfg)
    gold = task.judge_examples(prompts, random.Random(derive_seed(seed, "judge-gold")))
    g_yes, _ = rewards_from(group_probs(policy, [t for t, _ in gold], verdicts, 128), jcfg)
    yes = verdicts[0][0]

    def accuracy(ps: list[float], ys: list[bool]) -> float:
        return sum((p > 0.5) == y for p, y in zip(ps, ys)) / max(len(ys), 1)

    by_op: dict[str, dict[str, Any]] = {}
    for op in sorted({str(s.prompt.meta.get("op", "all")) for s in samples}):
        idx = [i for i, s in enumerate(samples) if str(s.prompt.meta.get("op", "all")) == op]
        ps, ys = [p_yes[i] for i in idx], [correct[i] for i in idx]
        by_op[op] = {"correct_rate": sum(ys) / len(ys), "accuracy": accuracy(ps, ys), "auroc": auroc(ps, ys)}
    return {"own_samples": len(samples), "own_correct_rate": sum(correct) / len(correct),
            "accuracy": accuracy(p_yes, correct), "auroc": auroc(p_yes, correct),
            "mean_p_yes": sum(p_yes) / len(p_yes), "by_op": by_op,
            "gold_vs_corrupted_accuracy": accuracy(g_yes, [v == yes for _, v in gold])}


def _in_band(acc: float, by_op: dict[str, float], cfg: SeedConfig) -> bool:
    return cfg.band[0] <= acc <= cfg.band[1] and min(by_op.values()) >= cfg.min_op_accuracy


def train_seed(task: Task, seed: int, cfg: SeedConfig, progress: ProgressFactory | None = None, log: Any = None) -> tuple[Any, dict[str, Any]]:
    """Train a fresh tiny model on the task's reference completions; returns (policy, report).

    Training is `objectives.trainer.fit` (the loop every objective uses), called once per
    check interval with one persistent AdamW, on that interval's batches in order."""
    torch.manual_seed(seed)
    policy = new_tiny_policy(seed)
    model = policy.model
    opt = torch.optim.AdamW(policy.trainable_parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)

    # Self-Rewarding's EFT data: the verification format, taught next to solving, for tasks whose
    # judge format the tiny model can read (the generic English one it cannot)
    teach_judge = judge_steps(cfg) > 0 and has_judge_format(task)

    def loss_fn(batch: list[Any]) -> tuple[torch.Tensor, dict[str, float]]:
        """(1 - f) * token-mean SFT on the solve examples (Prompts) + f * the mean NLL of the
        single verdict token on the judge examples ((text, verdict) pairs), f = judge_fraction:
        each kind weighs what its share of the examples is, whatever the completions' length."""
        solve = [b for b in batch if not isinstance(b, tuple)]
        lp, mask = policy.token_logprobs(policy.encode_prompts([p.text for p in solve]),
                                         [policy.encode_completion(p.reference) for p in solve])
        loss = sft_loss(lp, mask)
        judged = [b for b in batch if isinstance(b, tuple)]
        if not judged:
            return loss, {}
        jlp, jmask = policy.token_logprobs(policy.encode_prompts([t for t, _ in judged]),
                                           [policy.encode_completion(v, eos=False)[:1] for _, v in judged])
        judge_loss = sft_loss(jlp, jmask)
        f = cfg.judge_fraction
        return (1 - f) * loss + f * judge_loss, {"solve_loss": float(loss.detach()), "judge_loss": float(judge_loss.detach())}

    def train_steps(first: int, count: int, advance: Any) -> dict[str, float]:
        """Steps first .. first+count-1: step k trains on the train batch of round SEED_ROUND_BASE + k."""
        losses: dict[str, float] = {}
        for step in range(first, first + count):
            for group in opt.param_groups:  # a function of the step alone, so a rewind replays it exactly
                group["lr"] = cfg.lr * lr_factor(step, cfg.max_steps, cfg.warmup_steps)
            batch: list[Any] = list(task.prompts("train", cfg.batch_size, round=SEED_ROUND_BASE + step))
            if teach_judge:
                batch += judge_batch(task, seed, step, cfg)
            out = fit(policy, batch, loss_fn, lr=cfg.lr, epochs=1, batch_size=len(batch), generator=None,
                      grad_clip=1.0, optimizer=opt)
            # `loss` stays the solve loss (comparable with seeds that learn no judge)
            losses = {"loss": out.get("solve_loss", out["loss"])} | ({"judge_loss": out["judge_loss"]} if "judge_loss" in out else {})
            advance(1)
        return losses

    history: list[dict[str, Any]] = []
    step, every = 0, cfg.check_every
    saved = (copy.deepcopy(model.state_dict()), copy.deepcopy(opt.state_dict()), 0)
    ctx = progress("seeding", cfg.max_steps) if progress else None
    advance = ctx.__enter__() if ctx else (lambda k: None)
    try:
        while step < cfg.max_steps:
            losses = train_steps(step, every, advance)
            step += every
            acc, by_op = _check(policy, task, cfg)
            history.append({"step": step, "accuracy": acc, "by_op": by_op, **losses})
            if log:
                log(f"seed step {step}: eval greedy {acc:.1%} {by_op}")
            if _in_band(acc, by_op, cfg):
                break
            if acc > cfg.band[1]:
                if every == cfg.fine_every:  # overshot even at fine grain: keep the previous check
                    model.load_state_dict(saved[0])
                    policy.stepped()
                    step = saved[2]
                    history.append({"step": step, "note": "overshoot at fine grain; kept previous check"})
                    break
                model.load_state_dict(saved[0])
                opt.load_state_dict(saved[1])
                policy.stepped()
                step, every = saved[2], cfg.fine_every
                history.append({"step": step, "note": "overshoot; rewound to replay with finer checks"})
                continue
            saved = (copy.deepcopy(model.state_dict()), copy.deepcopy(opt.state_dict()), step)
    finally:
        if ctx:
            ctx.__exit__(None, None, None)
    acc, by_op = _check(policy, task, cfg)
    report = {"seed": seed, "steps": step, "eval_greedy_accuracy": acc, "by_op": by_op,
              "in_band": _in_band(acc, by_op, cfg), "history": history, "config": cfg.model_dump(mode="json")}
    if teach_judge:
        report["judge"] = judge_report(policy, task, cfg, seed)
    return policy, report


def load_or_train_seed(task_cfg: dict[str, Any] | None = None, seed: int = 0, cfg: SeedConfig | None = None,
                       progress: ProgressFactory | None = None, log: Any = None, task_name: str | None = None) -> Path:
    """Path of the cached seed checkpoint for (task, seed), training it first if needed."""
    if task_cfg is None:
        task_cfg = {"name": task_name or "arithmetic"}
    cfg = cfg or SeedConfig(**TASK_SEED_DEFAULTS.get(str(task_cfg.get("name")), {}))
    task = make_task(task_cfg)
    name = str(task_cfg.get("name"))
    resolved = TASKS.get(name).config.model_validate(task_cfg).model_dump(mode="json")
    path = cache_root() / f"seed-{name}-s{seed}-{seed_key(resolved, cfg, seed)}"
    if (path / "seed.json").exists():
        return path
    policy, report = train_seed(task, seed, cfg, progress=progress, log=log)

    def fill(tmp: Path) -> None:
        policy.save(tmp)
        (tmp / "seed.json").write_text(json.dumps(report, indent=2))

    atomic_dir(path, fill)
    return path


def seed_report(path: Path) -> dict[str, Any] | None:
    f = Path(path) / "seed.json"
    return json.loads(f.read_text()) if f.exists() else None
