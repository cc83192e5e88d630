"""Training an outcome reward model, and its held-out measurement.

pairwise: TRL's Bradley-Terry loss, -log sigmoid(r_chosen - r_rejected - margin), plus
optional reward centring, coefficient * mean((r_chosen + r_rejected)^2) (Eisenstein et
al.; TRL's `center_rewards_coefficient`). pointwise: binary cross-entropy of sigmoid(r)
against the verifier's label. Held out (a fixed share of prompts, never seen in training):
pairwise accuracy over every right-vs-wrong pair of a prompt, and the AUROC of the score
against the label over all held-out samples.
"""
from __future__ import annotations

import random
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal

import torch
import torch.nn.functional as F

from sharpen.errors import UserError
from sharpen.reward_models.data import (Labelled, Pair, is_heldout, load_samples, pairs_from_samples, read_pairs,
                                        with_label_noise)
from sharpen.reward_models.model import RewardModel
from sharpen.stats import auroc


def bradley_terry_loss(chosen: torch.Tensor, rejected: torch.Tensor, margin: torch.Tensor | None = None,
                       center: float | None = None) -> torch.Tensor:
    """TRL RewardTrainer's loss on a batch of pairs."""
    diff = chosen - rejected - (margin if margin is not None else 0.0)
    loss = -F.logsigmoid(diff).mean()
    if center:
        loss = loss + center * torch.mean((chosen + rejected) ** 2)
    return loss


def pointwise_loss(rewards: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(rewards, labels.float())


@dataclass
class RMTrainConfig:
    loss: Literal["pairwise", "pointwise"] = "pairwise"
    epochs: int = 2
    lr: float = 1e-4
    batch_size: int = 32
    heldout: float = 0.2
    max_pairs_per_prompt: int = 4
    center: float | None = None
    label_noise: float = 0.0
    train_prompts: int | None = None
    lora_r: int | None = None
    seed: int = 0
    rounds: list[int] = field(default_factory=list)
    members: int = 1  # an ensemble of k (sharpen.reward_models.ensemble)
    heads: bool = False  # the k members as heads on one frozen backbone, not k models
    bootstrap: bool = True  # each member on its own bootstrap sample of the training prompts

    def check(self) -> None:
        if not 0 <= self.label_noise < 0.5:
            raise UserError(f"--label-noise: {self.label_noise}; use a probability in [0, 0.5)")
        if not 0 < self.heldout < 1:
            raise UserError(f"--heldout: {self.heldout}; use a share of prompts in (0, 1)")
        for name in ("epochs", "batch_size", "max_pairs_per_prompt", "members"):
            if getattr(self, name) <= 0:
                raise UserError(f"--{name.replace('_', '-')}: {getattr(self, name)}; use a positive number")
        if self.train_prompts is not None and self.train_prompts <= 0:
            raise UserError(f"--train-prompts: {self.train_prompts}; use a positive number")


@dataclass
class RMData:
    train_pairs: list[Pair]
    train_samples: list[Labelled]
    heldout_pairs: list[Pair]
    heldout_samples: list[Labelled]

    def summary(self) -> dict[str, int]:
        return {"train_prompts": len({p.prompt_id for p in self.train_pairs} | {s.prompt_id for s in self.train_samples}),
                "train_pairs": len(self.train_pairs), "train_samples": len(self.train_samples),
                "heldout_prompts": len({p.prompt_id for p in self.heldout_pairs} | {s.prompt_id for s in self.heldout_samples}),
                "heldout_pairs": len(self.heldout_pairs), "heldout_samples": len(self.heldout_samples)}


def build_data(cfg: RMTrainConfig, run_dir: Path | None, pairs_file: Path | None) -> RMData:
    """A run's labelled samples and/or a pairs file, split (`split_data`)."""
    samples = load_samples(run_dir, cfg.rounds or None) if run_dir else []
    return split_data(cfg, samples, read_pairs(pairs_file) if pairs_file else [])


def split_data(cfg: RMTrainConfig, samples: list[Labelled], given: list[Pair]) -> RMData:
    """Split by prompt, cap the training prompts, add label noise to training only."""
    rng = random.Random(cfg.seed)
    ids = sorted({s.prompt_id for s in samples} | {p.prompt_id for p in given})
    held = {pid for pid in ids if is_heldout(pid, cfg.heldout, cfg.seed)}
    train_ids = [pid for pid in ids if pid not in held]
    if cfg.train_prompts is not None:
        train_ids = random.Random(cfg.seed).sample(train_ids, min(cfg.train_prompts, len(train_ids)))
    keep = set(train_ids)
    train_s = with_label_noise([s for s in samples if s.prompt_id in keep], cfg.label_noise, rng)
    held_s = [s for s in samples if s.prompt_id in held]
    train_p = pairs_from_samples(train_s, cfg.max_pairs_per_prompt, rng) + \
        [p if rng.random() >= cfg.label_noise else Pair(p.prompt_id, p.prompt, p.rejected, p.chosen, p.margin)
         for p in given if p.prompt_id in keep]
    held_p = pairs_from_samples(held_s, 10**9, random.Random(cfg.seed)) + [p for p in given if p.prompt_id in held]
    data = RMData(train_p, train_s, held_p, held_s)
    if cfg.loss == "pairwise" and not train_p:
        raise UserError("no training pairs: no training prompt has both a right and a wrong completion; "
                        "use --loss pointwise, more rounds, or --pairs")
    if cfg.loss == "pointwise" and not train_s:
        raise UserError("--loss pointwise needs a run's labelled samples; give RUN_DIR (a pairs file has no labels)")
    if not held_p and not held_s:
        raise UserError("no held-out prompts with data; raise --heldout or give more data")
    return data


Scorer = Callable[[list[str], list[str]], list[float]]


def evaluate(rm: RewardModel | Scorer, data: RMData) -> dict[str, Any]:
    """Held-out pairwise accuracy (ties count half) and AUROC of the score against the label;
    `rm` is a reward model or any (prompts, completions) -> scores, e.g. an ensemble's."""
    score: Scorer = rm.score if isinstance(rm, RewardModel) else rm
    out: dict[str, Any] = {}
    n = len(data.heldout_pairs)
    pair_scores = score([p.prompt for p in data.heldout_pairs] * 2,
                           [p.chosen for p in data.heldout_pairs] + [p.rejected for p in data.heldout_pairs])
    if n:
        wins = [1.0 if c > r else 0.5 if c == r else 0.0 for c, r in zip(pair_scores[:n], pair_scores[n:])]
        out["pairwise_accuracy"] = sum(wins) / n
        out["pairs"] = n
    if data.heldout_samples:
        sc = score([s.prompt for s in data.heldout_samples], [s.completion for s in data.heldout_samples])
        out["auroc"] = auroc(sc, [s.label for s in data.heldout_samples])
        out["samples"] = len(data.heldout_samples)
        out["positive_rate"] = sum(s.label for s in data.heldout_samples) / len(data.heldout_samples)
    elif n:  # a pairs file: chosen are the positives
        out["auroc"] = auroc(pair_scores, [True] * n + [False] * n)
    return out


def fit(rm: RewardModel, data: RMData, cfg: RMTrainConfig, progress: Any = None) -> list[float]:
    """AdamW over the training pairs (or samples), `epochs` passes in a seeded order; returns the losses."""
    items: list[Any] = data.train_pairs if cfg.loss == "pairwise" else data.train_samples
    params = [p for p in rm.model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=0.0)
    rng = random.Random(cfg.seed + 1)
    steps = cfg.epochs * ((len(items) + cfg.batch_size - 1) // cfg.batch_size)
    losses: list[float] = []
    rm.model.train()
    with (progress("rm train", steps) if progress else nullcontext(lambda k: None)) as advance:
        for _ in range(cfg.epochs):
            order = list(range(len(items)))
            rng.shuffle(order)
            for i in range(0, len(order), cfg.batch_size):
                batch = [items[j] for j in order[i:i + cfg.batch_size]]
                if cfg.loss == "pairwise":
                    r = rm.forward(rm.encode([p.prompt for p in batch] * 2,
                                             [p.chosen for p in batch] + [p.rejected for p in batch]))
                    margin = torch.tensor([p.margin for p in batch])
                    loss = bradley_terry_loss(r[:len(batch)], r[len(batch):], margin if margin.any() else None, cfg.center)
                else:
                    r = rm.forward(rm.encode([s.prompt for s in batch], [s.completion for s in batch]))
                    loss = pointwise_loss(r, torch.tensor([s.label for s in batch]))
                opt.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, 1.0)
                opt.step()
                losses.append(loss.item())
                advance(1)
    rm.model.eval()
    return losses


def train_reward_model(cfg: RMTrainConfig, out: Path, run_dir: Path | None = None, pairs_file: Path | None = None,
                       backbone: Path | None = None, force: bool = False, log: Callable[[str], None] = print,
                       progress: Any = None) -> dict[str, Any]:
    """Everything checked first (OUT, the data, the backbone), then train, measure, save."""
    cfg.check()
    out = Path(out)
    if out.exists() and not force and (not out.is_dir() or any(out.iterdir())):
        raise UserError(f"--out {out}: already exists and is not empty; choose a new folder, or pass --force to replace it")
    if run_dir is None and pairs_file is None:
        raise UserError("give RUN_DIR (a run's verified samples) or --pairs FILE")
    data = build_data(cfg, Path(run_dir) if run_dir else None, Path(pairs_file) if pairs_file else None)
    prompt_format, system_prompt = "auto", None
    if run_dir is not None:
        backbone, prompt_format, system_prompt = _run_backbone(Path(run_dir), backbone)
    if backbone is None:
        raise UserError("--backbone: give the checkpoint to put the reward head on (a pairs file names none)")
    log(f"reward model on {backbone}: {data.summary()}")
    result = train_and_save(cfg, data, backbone, prompt_format, system_prompt, out, log, progress)
    return {**result, "source": str(run_dir or pairs_file)}


def train_and_save(cfg: RMTrainConfig, data: RMData, backbone: Path, prompt_format: str, system_prompt: str | None,
                   out: Path, log: Callable[[str], None] = print, progress: Any = None) -> dict[str, Any]:
    """One RM, or an ensemble (`cfg.members` > 1), trained on `data` and written to `out` at once."""
    from sharpen.reward_models.ensemble import train_members
    from sharpen.rundir import atomic_dir

    config = {k: v for k, v in vars(cfg).items()}
    if cfg.members > 1:
        write, result = train_members(cfg, data, backbone, prompt_format, system_prompt, log, progress)
        result.update(data=data.summary(), config=config)
        atomic_dir(out, write)
        return result
    rm = RewardModel.from_backbone(backbone, prompt_format, system_prompt, cfg.lora_r, cfg.seed)
    before = evaluate(rm, data)
    t0 = time.time()
    losses = fit(rm, data, cfg, progress)
    after = evaluate(rm, data)
    result = {"kind": "outcome", "loss": cfg.loss, "heldout_before": before, "heldout": after, "data": data.summary(),
              "train_seconds": round(time.time() - t0, 1), "final_loss": sum(losses[-10:]) / max(len(losses[-10:]), 1),
              "config": config}
    rm.meta.update(result)
    atomic_dir(out, rm.save)
    return result


def _run_backbone(run_dir: Path, backbone: Path | None) -> tuple[Path, str, str | None]:
    """The run's starting model (its seed, or the checkpoint it began from), and how its
    prompts were rendered: the RM reads them as the policy did."""
    import yaml

    from sharpen.config import validate_recipe
    from sharpen.loading import resolve_policy_path

    data = yaml.safe_load((run_dir / "config.yaml").read_text())
    recipe = validate_recipe(data, str(run_dir / "config.yaml"))
    path = backbone or resolve_policy_path(recipe, print, None)
    return Path(path), recipe.policy.prompt_format, recipe.policy.system_prompt
