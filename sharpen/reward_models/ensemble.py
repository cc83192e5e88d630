"""Reward-model ensembles (Coste et al., 2023): k members trained with different seeds on
bootstrap samples of the training prompts, so that where they disagree the policy is off
the data the RM saw.

Two kinds. Full members: k reward models, each its own backbone copy, saved as
`DIR/member-<i>` with `DIR/sharpen_ensemble.json` listing them. Heads: one frozen backbone
with k linear heads (as oat does), one `AutoModelForSequenceClassification` with k labels;
the backbone's last-token features are computed once and only the heads train, so it costs
about one forward pass over the data instead of k fine-tunes.
"""
from __future__ import annotations

import json
import random
import time
from collections import Counter
from contextlib import nullcontext
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F

from sharpen.reward_models.model import META_FILE, RewardModel
from sharpen.reward_models.train import RMData, RMTrainConfig, evaluate, fit

ENSEMBLE_FILE = "sharpen_ensemble.json"  # marks a directory as an ensemble of member RM directories
AGGREGATES = ("mean", "wco", "uwo")


def member_dirs(path: str | Path) -> list[Path]:
    """An ensemble directory's members, or [path] for a single reward model."""
    path = Path(path).expanduser()
    listing = path / ENSEMBLE_FILE
    if listing.is_file():
        return [path / m for m in json.loads(listing.read_text())["members"]]
    return [path]


def holds_reward_model(path: str | Path) -> bool:
    path = Path(path).expanduser()
    return (path / META_FILE).is_file() or (path / ENSEMBLE_FILE).is_file()


def aggregate(scores: list[list[float]], how: str, lam: float) -> list[float]:
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


def bootstrap(data: RMData, seed: int) -> RMData:
    """Training prompts drawn with replacement (each with all its pairs and samples); held out unchanged."""
    ids = sorted({p.prompt_id for p in data.train_pairs} | {s.prompt_id for s in data.train_samples})
    rng = random.Random(seed)
    draw = Counter(rng.choice(ids) for _ in ids)
    return RMData([p for p in data.train_pairs for _ in range(draw[p.prompt_id])],
                  [s for s in data.train_samples for _ in range(draw[s.prompt_id])],
                  data.heldout_pairs, data.heldout_samples)


class _Cached:
    """Scores each (prompts, completions) list once with every member, then aggregates."""

    def __init__(self, members: list[Callable[[list[str], list[str]], list[list[float]]]]) -> None:
        self.members, self.memo = members, {}  # type: ignore[var-annotated]

    def by(self, how: str, lam: float) -> Callable[[list[str], list[str]], list[float]]:
        def score(prompts: list[str], completions: list[str]) -> list[float]:
            key = (tuple(prompts), tuple(completions))
            if key not in self.memo:
                self.memo[key] = [row for m in self.members for row in m(prompts, completions)]
            return aggregate(self.memo[key], how, lam)
        return score


def ensemble_quality(members: list[Callable[[list[str], list[str]], list[list[float]]]], data: RMData,
                     lam: float) -> dict[str, Any]:
    """Held-out pairwise accuracy and AUROC of each aggregate."""
    cached = _Cached(members)
    return {how: evaluate(cached.by(how, lam), data) for how in AGGREGATES}


def train_members(cfg: RMTrainConfig, data: RMData, backbone: Path, prompt_format: str, system_prompt: str | None,
                  log: Callable[[str], None], progress: Any = None) -> tuple[Callable[[Path], None], dict[str, Any]]:
    """k members (`cfg.members`): full models or heads (`cfg.heads`). Returns (a function that
    writes them into a directory, the held-out result)."""
    t0 = time.time()
    if cfg.heads:
        rm = RewardModel.from_backbone(backbone, prompt_format, system_prompt, None, cfg.seed, heads=cfg.members)
        before = ensemble_quality([rm.score_members], data, 0.5)
        fit_heads(rm, data, cfg, progress)
        result = {"kind": "outcome", "ensemble": "heads", "k": cfg.members, "heldout_before": before["mean"],
                  "heldout": ensemble_quality([rm.score_members], data, 0.5)}
        rm.meta.update(result, train_seconds=round(time.time() - t0, 1))
        return rm.save, {**result, "train_seconds": round(time.time() - t0, 1)}
    models, per_member = [], []
    for i in range(cfg.members):
        member_cfg = replace(cfg, seed=cfg.seed + i)  # the held-out split stays the ensemble's (split_data used cfg.seed)
        mdata = bootstrap(data, cfg.seed + i) if cfg.bootstrap else data
        rm = RewardModel.from_backbone(backbone, prompt_format, system_prompt, cfg.lora_r, member_cfg.seed)
        fit(rm, mdata, member_cfg, progress)
        per_member.append(evaluate(rm, data))
        rm.meta.update({"kind": "outcome", "member": i, "heldout": per_member[-1], "bootstrap": cfg.bootstrap})
        models.append(rm)
        log(f"member {i}: held-out pairwise {per_member[-1].get('pairwise_accuracy', float('nan')):.1%}, "
            f"AUROC {per_member[-1].get('auroc', float('nan')):.1%}")
    quality = ensemble_quality([m.score_members for m in models], data, 0.5)
    result = {"kind": "outcome", "ensemble": "models", "k": cfg.members, "member_heldout": per_member,
              "heldout": quality, "train_seconds": round(time.time() - t0, 1)}

    def write(d: Path) -> None:
        names = []
        for i, m in enumerate(models):
            (d / f"member-{i}").mkdir()
            m.save(d / f"member-{i}")
            names.append(f"member-{i}")
        (d / ENSEMBLE_FILE).write_text(json.dumps({**result, "members": names}, indent=2) + "\n")
    return write, result


def fit_heads(rm: RewardModel, data: RMData, cfg: RMTrainConfig, progress: Any = None) -> list[float]:
    """Train only the k heads on frozen last-token features; head j weighs each training item
    by how often its prompt was drawn in bootstrap sample j (all 1 without bootstrap)."""
    pairwise = cfg.loss == "pairwise"
    items: list[Any] = data.train_pairs if pairwise else data.train_samples
    texts = ([(p.prompt, p.chosen) for p in items] + [(p.prompt, p.rejected) for p in items]) if pairwise \
        else [(s.prompt, s.completion) for s in items]
    unique = list(dict.fromkeys(texts))
    where = {t: i for i, t in enumerate(unique)}
    with torch.no_grad():
        feats = torch.cat([rm.features(rm.encode([p for p, _ in unique[i:i + 64]], [c for _, c in unique[i:i + 64]]))
                           for i in range(0, len(unique), 64)])
    k = rm.heads
    ids = sorted({x.prompt_id for x in items})
    weights = torch.ones(k, len(items))
    if cfg.bootstrap:
        for j in range(k):
            rng = random.Random(cfg.seed + j)
            draw = Counter(rng.choice(ids) for _ in ids)
            weights[j] = torch.tensor([float(draw[x.prompt_id]) for x in items])
    if pairwise:
        a = torch.tensor([where[(p.prompt, p.chosen)] for p in items])
        b = torch.tensor([where[(p.prompt, p.rejected)] for p in items])
    else:
        a, labels = torch.tensor([where[(s.prompt, s.completion)] for s in items]), torch.tensor([float(s.label) for s in items])
    head = rm._head()
    opt = torch.optim.AdamW(head.parameters(), lr=cfg.lr, weight_decay=0.0)
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    steps = cfg.epochs * ((len(items) + cfg.batch_size - 1) // cfg.batch_size)
    losses: list[float] = []
    with (progress("rm heads", steps) if progress else nullcontext(lambda n: None)) as advance:
        for _ in range(cfg.epochs):
            order = torch.randperm(len(items), generator=gen)
            for i in range(0, len(items), cfg.batch_size):
                idx = order[i:i + cfg.batch_size]
                w = weights[:, idx].T  # [B, k]
                if pairwise:
                    per = -F.logsigmoid(rm.head(feats[a[idx]]) - rm.head(feats[b[idx]]))
                else:
                    r = rm.head(feats[a[idx]])
                    per = F.binary_cross_entropy_with_logits(r, labels[idx, None].expand_as(r), reduction="none")
                loss = (per * w).sum() / w.sum().clamp(min=1.0)
                opt.zero_grad()
                loss.backward()
                opt.step()
                losses.append(loss.item())
                advance(1)
    return losses
