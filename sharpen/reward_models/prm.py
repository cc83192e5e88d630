"""Process reward models (Math-Shepherd, Wang et al. 2024): a score for every step.

Labels need no human: from each step prefix the policy samples N completions; the soft
label of that step is the share that reach the right answer, the hard label whether any
does (the last step's label is its own final answer's correctness). A step is a line, or
the task's `step_separator`.

The model is `AutoModelForTokenClassification` with one label, read at the last token of
each step (the separator that ends it, or the completion's last token), trained with binary
cross-entropy against soft or hard labels; it loads with transformers alone. A solution's
score aggregates its step scores by `min`, `product` or `last`.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Callable, Literal, Sequence

import torch
import torch.nn.functional as F
from transformers import AutoModelForTokenClassification, AutoTokenizer

from sharpen.errors import UserError
from sharpen.reward_models.model import META_FILE, load_with_head, quiet_hf
from sharpen.types import Prompt, SamplingParams

Aggregate = Literal["min", "product", "last"]


def split_steps(completion: str, separator: str = "\n") -> list[str]:
    """The completion's non-empty steps."""
    return [s for s in completion.strip().split(separator) if s.strip()]


def aggregate(step_scores: Sequence[float], how: Aggregate = "min") -> float:
    """One solution score from its step scores (each in [0, 1]); 0 for no step."""
    if not step_scores:
        return 0.0
    if how == "min":
        return min(step_scores)
    if how == "product":
        return math.prod(step_scores)
    return step_scores[-1]


def math_shepherd_labels(generate: Callable[..., Any], task: Any, items: Sequence[tuple[Prompt, str]], n: int,
                         params: SamplingParams, seeds: Callable[[int, int], int], separator: str = "\n",
                         progress: Callable[[int], None] | None = None) -> list[list[float]]:
    """Soft labels, per item and step: the share of `n` completions sampled from the step's
    prefix (one batched `generate` call for all prefixes) whose final answer is right."""
    queries: list[tuple[int, int, Prompt, str]] = []  # (item, step, prompt, prefix)
    labels: list[list[float]] = []
    for i, (prompt, completion) in enumerate(items):
        steps = split_steps(completion, separator)
        labels.append([0.0] * len(steps))
        if steps:  # the last step is judged by its own final answer
            labels[i][-1] = float(task.score_batch([prompt], [completion])[0] >= 1.0)
        for k in range(len(steps) - 1):
            queries.append((i, k, prompt, separator.join(steps[:k + 1]) + separator))
    if queries:
        groups = generate([p.text + prefix for _, _, p, prefix in queries], SamplingParams(
            n=n, temperature=params.temperature, top_p=params.top_p, max_new_tokens=params.max_new_tokens),
            [seeds(i, k) for i, k, _, _ in queries], progress=progress)
        flat_p = [p for (_, _, p, _), g in zip(queries, groups) for _ in g]
        flat_c = [prefix + c.text for (_, _, _, prefix), g in zip(queries, groups) for c in g]
        scores = task.score_batch(flat_p, flat_c)
        at = 0
        for (i, k, _, _), g in zip(queries, groups):
            labels[i][k] = sum(s >= 1.0 for s in scores[at:at + len(g)]) / max(len(g), 1)
            at += len(g)
    return labels


class ProcessRewardModel:
    """Step scores P(this step is on a path to the right answer) for (prompt, completion)."""

    def __init__(self, model: Any, tokenizer: Any, separator: str = "\n", meta: dict[str, Any] | None = None) -> None:
        self.model, self.tokenizer, self.separator = model, tokenizer, separator
        self.meta = dict(meta or {})
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token

    @classmethod
    def from_backbone(cls, path: str | Path, separator: str = "\n", seed: int = 0) -> "ProcessRewardModel":
        model, tokenizer = load_with_head(AutoModelForTokenClassification, Path(path), seed, "process-reward")
        return cls(model, tokenizer, separator, {"backbone": str(path)})

    @classmethod
    def load(cls, path: str | Path, field: str = "--prm") -> "ProcessRewardModel":
        path = Path(path)
        meta_file = path / META_FILE
        meta = json.loads(meta_file.read_text()) if meta_file.is_file() else {}
        if meta.get("kind") != "process":
            raise UserError(f"{field} {path}: holds no process reward model; train one with `sharpen rm train --kind prm`")
        with quiet_hf():
            model = AutoModelForTokenClassification.from_pretrained(path, dtype=torch.float32)
        return cls(model.eval(), AutoTokenizer.from_pretrained(path), meta.get("separator", "\n"), meta)

    def save(self, path: Path) -> None:
        with quiet_hf():
            self.model.save_pretrained(path)
        self.tokenizer.save_pretrained(path)
        (path / META_FILE).write_text(json.dumps({**self.meta, "kind": "process", "separator": self.separator}, indent=2) + "\n")

    def encode(self, prompt: str, completion: str) -> tuple[list[int], list[int]]:
        """Token ids of prompt + completion, and the index of each step's last token."""
        ids = list(self.tokenizer(prompt, add_special_tokens=True)["input_ids"])
        ends: list[int] = []
        steps = split_steps(completion, self.separator)
        for k, step in enumerate(steps):
            text = step + (self.separator if k < len(steps) - 1 else "")
            ids += self.tokenizer(text, add_special_tokens=False)["input_ids"]
            ends.append(len(ids) - 1)
        return ids, ends

    def logits(self, batch: list[tuple[list[int], list[int]]]) -> list[torch.Tensor]:
        """Per row, the [steps] logits at the step ends (right-padded batch)."""
        width = max(len(ids) for ids, _ in batch)
        pad = self.tokenizer.pad_token_id
        input_ids = torch.tensor([ids + [pad] * (width - len(ids)) for ids, _ in batch])
        mask = torch.tensor([[1] * len(ids) + [0] * (width - len(ids)) for ids, _ in batch])
        out = self.model(input_ids=input_ids, attention_mask=mask).logits.squeeze(-1)
        return [out[r, ends] for r, (_, ends) in enumerate(batch)]

    @torch.no_grad()
    def step_scores(self, prompts: Sequence[str], completions: Sequence[str], batch_size: int = 64) -> list[list[float]]:
        self.model.eval()
        enc = [self.encode(p, c) for p, c in zip(prompts, completions)]
        out: list[list[float]] = []
        for i in range(0, len(enc), batch_size):
            out += [torch.sigmoid(x).tolist() for x in self.logits(enc[i:i + batch_size])]
        return out

    def fit(self, prompts: Sequence[str], completions: Sequence[str], labels: Sequence[Sequence[float]], epochs: int,
            lr: float, batch_size: int, seed: int, advance: Callable[[int], None] = lambda k: None) -> list[float]:
        """BCE of each step's logit against its (soft) label, AdamW, a seeded order."""
        import random

        enc = [self.encode(p, c) for p, c in zip(prompts, completions)]
        rows = [(e, torch.tensor(list(y), dtype=torch.float32)) for e, y in zip(enc, labels) if len(e[1]) == len(y) and y]
        opt = torch.optim.AdamW([p for p in self.model.parameters() if p.requires_grad], lr=lr)
        rng, losses = random.Random(seed), []
        self.model.train()
        for _ in range(epochs):
            rng.shuffle(rows)
            for i in range(0, len(rows), batch_size):
                chunk = rows[i:i + batch_size]
                logits = self.logits([e for e, _ in chunk])
                loss = F.binary_cross_entropy_with_logits(torch.cat(logits), torch.cat([y for _, y in chunk]))
                opt.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
                opt.step()
                losses.append(loss.item())
                advance(1)
        self.model.eval()
        return losses
