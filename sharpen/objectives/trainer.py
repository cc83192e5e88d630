"""The minibatch loop every objective shares: shuffle, step, clip, average the stats.

Each call builds a fresh AdamW, so no optimizer state crosses a round boundary: the loop
relies on that for exact resume (the round-r checkpoint is the whole state). The data
order comes from an explicit generator seeded from (run seed, round), never torch's
global RNG, so it is the same in a resumed run.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Literal, Sequence

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor

from sharpen.errors import UserError, is_out_of_memory
from sharpen.seeds import generator
from sharpen.types import Context

LossFn = Callable[[list[Any]], tuple[Any, ...]]  # (loss, stats) or (loss, stats, count)


class TrainConfig(BaseModel):
    """Knobs every objective shares; each objective sets its own `kind` and `lr` default."""

    model_config = ConfigDict(extra="forbid")
    lr: float = Field(1e-3, gt=0, description="AdamW learning rate (a fresh optimizer each round)")
    epochs: int = Field(1, gt=0, description="passes over the round's data")
    batch_size: int = Field(64, gt=0, description="items (examples, pairs or groups) per optimizer step")
    max_steps: int | None = Field(None, gt=0, description="stop after this many optimizer steps (None: all epochs)")
    init: Literal["last", "base"] = Field(
        "last", description="read by the loop: 'base' restarts each round from the starting checkpoint (ReST-EM, STaR)")
    weight_decay: float = Field(0.0, ge=0)
    grad_clip: float | None = Field(1.0, gt=0, description="max global grad norm (None: no clipping)")
    warmup_steps: int = Field(0, ge=0, description="linear lr warmup; a fresh AdamW's first steps are large")
    schedule: Literal["constant", "cosine"] = Field(
        "constant", description="lr after warmup: constant, or cosine decay to 0 by the round's last step")
    micro_batch_size: int | None = Field(
        None, gt=0, description="items per forward/backward; gradients accumulate to batch_size (same loss and gradients, less memory)")
    reference: Literal["base", "last"] | None = Field(
        None, description="read by the loop: the frozen reference this objective scores against (None: it needs none)")
    temperature: float | None = Field(
        None, gt=0, description="log-prob temperature; one that uses the sampler's log-probs must equal sample.temperature")


def num_steps(n_items: int, batch_size: int, epochs: int, max_steps: int | None = None) -> int:
    """Optimizer steps `fit` will take (for the progress bar)."""
    steps = epochs * math.ceil(n_items / batch_size)
    return min(steps, max_steps) if max_steps else steps


def lr_factor(step: int, total: int, warmup_steps: int = 0, schedule: str = "constant") -> float:
    """Multiplier of the base lr at optimizer step `step` (0-based) of `total`."""
    if step < warmup_steps:
        return (step + 1) / (warmup_steps + 1)
    if schedule == "cosine":
        return 0.5 * (1 + math.cos(math.pi * (step - warmup_steps) / max(1, total - warmup_steps)))
    return 1.0


def data_generator(ctx: Context, purpose: str) -> torch.Generator:
    """A generator for one purpose of one round, stable across processes (resume-safe)."""
    return generator(ctx.seed, ctx.round, "objective", purpose)


def fit(
    policy: Any,
    items: Sequence[Any],
    loss_fn: LossFn,
    *,
    lr: float,
    epochs: int,
    batch_size: int,
    generator: torch.Generator | None,
    weight_decay: float = 0.0,
    grad_clip: float | None = 1.0,
    max_steps: int | None = None,
    warmup_steps: int = 0,
    schedule: str = "constant",
    micro_batch_size: int | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    progress: Callable[[int], None] | None = None,
    on_step: Callable[[dict[str, float]], None] | None = None,
) -> dict[str, float]:
    """Train the policy in place on `items`; returns the per-step mean of every stat.

    `loss_fn(batch)` returns (loss, stats) for a batch of items, the loss a mean over
    `len(batch)` items, or (loss, stats, count) for a mean over `count` units (SFT: tokens).
    With `micro_batch_size`, each optimizer batch runs in micro-batches whose gradients
    accumulate: each micro loss is backpropagated times its count and the sum divided by
    the batch's total count, so loss and gradients equal the full batch's (the test checks
    this). `generator` None keeps the items' order (the seeding schedule). `optimizer`
    carries state across calls (seeding); by default each call builds a fresh AdamW.
    `on_step` gets each step's loss, lr and stats (experiment tracking).
    The policy is in train mode only inside this call.
    """
    if not items:
        return {"steps": 0}
    params = policy.trainable_parameters()
    opt = optimizer or torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    total = num_steps(len(items), batch_size, epochs, max_steps)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: lr_factor(step, total, warmup_steps, schedule)) \
        if optimizer is None else None
    micro = micro_batch_size or batch_size
    sums: dict[str, float] = {}
    steps = 0
    with policy.train_mode():
        for _ in range(epochs):
            order = torch.randperm(len(items), generator=generator).tolist() if generator is not None else list(range(len(items)))
            for start in range(0, len(items), batch_size):
                batch = [items[i] for i in order[start:start + batch_size]]
                opt.zero_grad(set_to_none=True)
                loss, stats = _accumulate(loss_fn, batch, micro, params, steps)
                if grad_clip:
                    stats = {**stats, "grad_norm": float(torch.nn.utils.clip_grad_norm_(params, grad_clip))}
                lr_now = opt.param_groups[0]["lr"]
                opt.step()
                policy.stepped()
                if sched is not None:
                    sched.step()
                for k, v in {"loss": loss, **stats}.items():
                    sums[k] = sums.get(k, 0.0) + float(v)
                steps += 1
                if on_step:
                    on_step({"loss": float(loss), "lr": float(lr_now), **{k: float(v) for k, v in stats.items()}})
                if progress:
                    progress(1)
                if max_steps and steps >= max_steps:
                    break
            if max_steps and steps >= max_steps:
                break
    return {**{k: v / steps for k, v in sums.items()}, "steps": steps}


def _split(out: tuple[Any, ...], n_items: int) -> tuple[Tensor, dict[str, float], float]:
    loss, stats = out[0], out[1]
    count = float(out[2]) if len(out) > 2 else float(n_items)
    return loss, stats, count


def _accumulate(loss_fn: LossFn, batch: list[Any], micro: int, params: list[Tensor],
                step: int) -> tuple[float, dict[str, float]]:
    """Forward and backward one optimizer batch, in micro-batches; returns (loss, stats)."""
    try:
        if micro >= len(batch):  # one pass: backward the mean loss itself, as without micro-batching
            loss, stats, _ = _split(loss_fn(batch), len(batch))
            _check_finite(loss, step)
            loss.backward()
            return loss.detach().item(), stats
        total_count, total_loss, weighted = 0.0, 0.0, {}
        for i in range(0, len(batch), micro):
            chunk = batch[i:i + micro]
            loss, stats, count = _split(loss_fn(chunk), len(chunk))
            _check_finite(loss, step)
            (loss * count).backward()
            total_count += count
            total_loss += loss.detach().item() * count
            for k, v in stats.items():
                weighted[k] = weighted.get(k, 0.0) + float(v) * count
        scale = 1.0 / max(total_count, 1e-12)
        for p in params:
            if p.grad is not None:
                p.grad.mul_(scale)
        return total_loss * scale, {k: v * scale for k, v in weighted.items()}
    except RuntimeError as err:
        if is_out_of_memory(err):
            raise UserError(f"objective: out of memory on a micro-batch of {min(micro, len(batch))} items; lower "
                            "objective.micro_batch_size (or set policy.gradient_checkpointing=true, or policy.lora)") from None
        raise


def _check_finite(loss: Tensor, step: int) -> None:
    if not torch.isfinite(loss):
        raise UserError(f"objective: the loss became {loss.detach().item()} at step {step}; lower objective.lr")


def train(policy: Any, items: Sequence[Any], loss_fn: LossFn, cfg: TrainConfig, ctx: Context, name: str) -> dict[str, float]:
    """`fit` with a recipe's knobs, the round's data order and a progress bar."""
    total = num_steps(len(items), cfg.batch_size, cfg.epochs, cfg.max_steps)
    with ctx.progress(f"train {name}", total) as advance:
        return fit(policy, items, loss_fn, lr=cfg.lr, epochs=cfg.epochs, batch_size=cfg.batch_size,
                   generator=data_generator(ctx, name), weight_decay=cfg.weight_decay, grad_clip=cfg.grad_clip,
                   max_steps=cfg.max_steps, warmup_steps=cfg.warmup_steps, schedule=cfg.schedule,
                   micro_batch_size=cfg.micro_batch_size, progress=advance, on_step=getattr(ctx, "on_step", None))


def require(data: Sequence[Any], kind: type, objective: str, builders: str) -> None:
    """A recipe that feeds the wrong data shape to an objective fails with the fix."""
    bad = next((x for x in data if not isinstance(x, kind)), None)
    if bad is not None:
        raise UserError(f"objective: {objective} trains on {kind.__name__} items but the builder gave "
                        f"{type(bad).__name__}; use build.kind: {builders}")
