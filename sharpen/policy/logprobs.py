"""Token log-probs without a full float32 [B, L, V] tensor: gather, then logsumexp in chunks.

Every objective differentiates log p(y_t | x, y_<t) of the completion tokens. The naive
way, log_softmax over the whole [B, L, V] logits in float32, costs B*L*V*4 bytes twice
(with its gradient): 16 x 100 tokens x 49,152 (SmolLM2) is 315 MB a copy, and Qwen's
151,936 vocabulary triples it. Here the LM head runs on `chunk` positions at a time, each
under activation checkpointing, so at most one [chunk, V] block of logits is alive, in the
forward and in the backward; only completion positions are computed at all.

`token_terms` and `next_token_logprobs` are the batched forwards behind `Policy`'s
log-prob methods: one layout (`left_padded`) and one decoder pass for every objective,
self-certainty and the judge.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Sequence

import torch
from torch import Tensor
from torch.utils.checkpoint import checkpoint

if TYPE_CHECKING:
    from transformers import PreTrainedModel

    from sharpen.policy.policy import Policy

DEFAULT_CHUNK = 1024  # positions per LM-head block: 1024 x 49,152 fp32 is 200 MB


def _block(head: Callable[[Tensor], Tensor], hidden: Tensor, targets: Tensor, inv_t: float,
           vocab_mean: bool) -> tuple[Tensor, Tensor]:
    logits = head(hidden).float() * inv_t
    lse = torch.logsumexp(logits, dim=-1)
    target_lp = logits.gather(-1, targets[:, None]).squeeze(-1) - lse
    mean_lp = logits.mean(-1) - lse if vocab_mean else target_lp.new_zeros(())
    return target_lp, mean_lp


def chunked_token_logprobs(head: Callable[[Tensor], Tensor], hidden: Tensor, targets: Tensor,
                           temperature: float = 1.0, chunk: int = DEFAULT_CHUNK,
                           vocab_mean: bool = False) -> tuple[Tensor, Tensor | None]:
    """log softmax(head(hidden) / T)[target] per row of `hidden` [N, H] / `targets` [N].

    With `vocab_mean`, also mean_j log p_j per row (what self-certainty needs:
    KL(U || p) = -log V - mean_j log p_j). Differentiable; blocks are recomputed in the
    backward instead of kept when gradients are on.
    """
    inv_t = 1.0 / temperature if temperature > 0 else 1.0
    outs, means = [], []
    grad = torch.is_grad_enabled() and hidden.requires_grad
    for start in range(0, hidden.shape[0], chunk):
        h, t = hidden[start:start + chunk], targets[start:start + chunk]
        if grad:
            lp, mean = checkpoint(_block, head, h, t, inv_t, vocab_mean, use_reentrant=False)
        else:
            lp, mean = _block(head, h, t, inv_t, vocab_mean)
        outs.append(lp)
        means.append(mean)
    if not outs:
        empty = hidden.new_zeros((0,), dtype=torch.float32)
        return empty, (empty if vocab_mean else None)
    return torch.cat(outs), (torch.cat(means) if vocab_mean else None)


def body_and_head(model: PreTrainedModel) -> tuple[Any, Any]:
    """(decoder that returns hidden states, LM head) when logits are exactly head(hidden);
    (None, None) for a head that is more than one linear map (softcapping, logit scale)."""
    cfg = model.config
    if getattr(cfg, "final_logit_softcapping", None) or getattr(cfg, "logit_scale", None) not in (None, 1, 1.0):
        return None, None
    body, head = model.base_model, model.get_output_embeddings()
    if body is model or head is None:
        return None, None
    return body, head


def left_padded(prompt_ids: list[list[int]], completion_ids: list[list[int]], pad_id: int,
                device: torch.device) -> tuple[Tensor, Tensor, Tensor, Tensor | None]:
    """(ids, mask, position ids, attention mask or None when nothing is padded) on `device`.

    Prompts are left-padded and completions right-padded, so every completion starts at
    the same column; position ids count real tokens only, so padding changes no number.
    """
    width_p = max((len(p) for p in prompt_ids), default=0)
    width_c = max((len(c) for c in completion_ids), default=0)
    ids = torch.full((len(prompt_ids), width_p + width_c), pad_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for b, (p, c) in enumerate(zip(prompt_ids, completion_ids)):
        ids[b, width_p - len(p):width_p] = torch.tensor(p, dtype=torch.long)
        ids[b, width_p:width_p + len(c)] = torch.tensor(c, dtype=torch.long)
        mask[b, width_p - len(p):width_p + len(c)] = 1
    ids, mask = ids.to(device), mask.to(device)
    positions = (mask.cumsum(1) - 1).clamp(min=0)
    return ids, mask, positions, (None if bool(mask.all()) else mask)


def _forward(policy: "Policy", ids: Tensor, positions: Tensor, attention: Tensor | None,
             select: Callable[[Tensor], Tensor]) -> tuple[Callable[[Tensor], Tensor], Tensor]:
    """(head, `select`ed rows): the decoder's hidden states and the LM head where logits are
    head(hidden), so the head runs on the selected rows only; else the model's logits."""
    body, head = body_and_head(policy.hf_model)
    if body is not None:
        hidden = body(input_ids=ids, attention_mask=attention, position_ids=positions, use_cache=False).last_hidden_state
        return head, select(hidden)
    logits = policy.model(input_ids=ids, attention_mask=attention, position_ids=positions, use_cache=False).logits
    return (lambda x: x), select(logits)


def token_terms(policy: "Policy", prompt_ids: list[list[int]], completion_ids: list[list[int]], temperature: float,
                vocab_mean: bool) -> tuple[Tensor, Tensor | None, Tensor]:
    """(log p(completion token | prefix) [B, Lc_max], mean_j log p(j | prefix) or None,
    float mask) of one batched forward (`Policy.token_logprobs`)."""
    if len(prompt_ids) != len(completion_ids):
        raise ValueError(f"{len(prompt_ids)} prompts but {len(completion_ids)} completions")
    batch = len(prompt_ids)
    width_p = max((len(p) for p in prompt_ids), default=0)
    width_c = max((len(c) for c in completion_ids), default=0)
    if batch == 0 or width_c == 0:
        zeros = torch.zeros((batch, width_c), device=policy.device)
        return zeros, zeros, zeros
    if any(len(p) == 0 for p in prompt_ids):
        raise ValueError("every prompt needs at least one token (encode_prompt adds bos)")
    policy.check_length(max(len(p) + len(c) for p, c in zip(prompt_ids, completion_ids)), "a prompt + completion")
    ids, mask, positions, attention = left_padded(prompt_ids, completion_ids, policy.pad_id, policy.device)
    cmask = mask[:, width_p:].bool()
    targets = ids[:, width_p:][cmask]
    with policy.adapter_context(), policy.autocast():
        # positions width_p-1 .. width_p+width_c-2 predict the completion tokens
        head, rows = _forward(policy, ids, positions, attention, lambda t: t[:, width_p - 1:width_p + width_c - 1][cmask])
        lp_flat, mean_flat = chunked_token_logprobs(head, rows, targets, temperature, vocab_mean=vocab_mean)
    lp = torch.zeros((batch, width_c), dtype=lp_flat.dtype, device=policy.device)
    lp = lp.masked_scatter(cmask, lp_flat)
    mean = None
    if mean_flat is not None:
        mean = torch.zeros((batch, width_c), dtype=mean_flat.dtype, device=policy.device).masked_scatter(cmask, mean_flat)
    return lp, mean, cmask.float()


def next_token_logprobs(policy: "Policy", prompt_ids: list[list[int]], candidates: Sequence[int]) -> Tensor:
    """log p(candidate | prompt) [B, len(candidates)] at the first completion position
    (`Policy.next_token_logprobs`); the head runs on the last column only."""
    cols = torch.tensor(list(candidates), dtype=torch.long, device=policy.device)
    if not prompt_ids:
        return torch.zeros((0, len(cols)), device=policy.device)
    if any(len(p) == 0 for p in prompt_ids):
        raise ValueError("every prompt needs at least one token (encode_prompt adds bos)")
    width = max(len(p) for p in prompt_ids)
    policy.check_length(width + 1, "a judge prompt + its verdict")
    ids, _, positions, attention = left_padded(prompt_ids, [[] for _ in prompt_ids], policy.pad_id, policy.device)
    with policy.adapter_context(), policy.autocast():
        head, last = _forward(policy, ids, positions, attention, lambda t: t[:, -1])
        logits = head(last)
    return torch.log_softmax(logits.float(), dim=-1)[:, cols]
