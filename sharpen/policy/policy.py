"""`Policy`: a transformers causal LM plus its tokenizer, the one thing every part trains or samples.

The built-in tiny model and any local Hugging Face checkpoint directory go through the
same code: `AutoModelForCausalLM` / `AutoTokenizer` to load, `save_pretrained` to save,
one batched forward for log-probs (what SFT, DPO and GRPO all differentiate), and the
shared-prefix sampler in `sampler.py` for rollouts.
"""
from __future__ import annotations

import contextlib
import copy
from pathlib import Path
from typing import Callable, Iterator

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase
from transformers.utils import logging as hf_logging

from sharpen.errors import UserError
from sharpen.policy.sampler import forward_logits, sample_ids
from sharpen.types import Completion


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split())
    text = text or type(err).__name__
    return text if len(text) <= 200 else text[:197] + "..."


@contextlib.contextmanager
def _no_progress_bars() -> Iterator[None]:
    """Hide transformers' per-file load/save bars: the loop saves every round and draws its own."""
    was_on = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_on:
            hf_logging.enable_progress_bar()


class Policy:
    """A causal LM and its tokenizer, float32 on CPU."""

    def __init__(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> None:
        self.model = model
        self.tokenizer = tokenizer

    # ---- load / save -------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | Path) -> "Policy":
        """Load a directory written by `save_pretrained` (model + tokenizer); float32, CPU, eval."""
        path = Path(path)
        if not path.is_dir():
            raise UserError(f"checkpoint {path}: no such directory (expected a Hugging Face model directory saved with save_pretrained)")
        if not (path / "config.json").is_file():
            raise UserError(f"checkpoint {path}: no config.json (expected a Hugging Face model directory saved with save_pretrained)")
        try:
            tokenizer = AutoTokenizer.from_pretrained(path)
        except Exception as err:  # noqa: BLE001 - any failure here is a bad directory
            raise UserError(f"checkpoint {path}: cannot load the tokenizer ({_one_line(err)}); save it next to the model with tokenizer.save_pretrained") from None
        try:
            with _no_progress_bars():
                model, info = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, output_loading_info=True)
        except Exception as err:  # noqa: BLE001 - truncated or corrupt weights, unknown architecture
            raise UserError(f"checkpoint {path}: cannot load the model weights ({_one_line(err)}); re-save the checkpoint") from None
        # transformers only warns when weights are missing and initialises them at random.
        bad = sorted(info.get("missing_keys", ())) + sorted(str(k) for k in info.get("mismatched_keys", ()))
        if bad:
            raise UserError(f"checkpoint {path}: weights do not match config.json (missing or mis-shaped: {', '.join(bad[:3])}"
                            f"{', ...' if len(bad) > 3 else ''}); re-save the checkpoint with save_pretrained")
        return cls(model.float().to("cpu").eval(), tokenizer)

    def save(self, dir: str | Path) -> None:
        """Write model (safetensors) and tokenizer with `save_pretrained`; `Policy.load` reads it back."""
        Path(dir).mkdir(parents=True, exist_ok=True)
        with _no_progress_bars():
            self.model.save_pretrained(dir, safe_serialization=True)
            self.tokenizer.save_pretrained(dir)

    def copy(self) -> "Policy":
        """A frozen deep copy (eval, no gradients): a reference model for DPO/GRPO/KL."""
        model = copy.deepcopy(self.model).eval()
        model.requires_grad_(False)
        return Policy(model, self.tokenizer)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    # ---- tokens ------------------------------------------------------------------------
    @property
    def eos_id(self) -> int:
        eos = self.tokenizer.eos_token_id
        if eos is None:
            eos = self.model.config.eos_token_id
            eos = eos[0] if isinstance(eos, (list, tuple)) else eos
        if eos is None:
            raise UserError("policy: the tokenizer has no eos token; set tokenizer.eos_token before saving the checkpoint")
        return int(eos)

    @property
    def pad_id(self) -> int:
        """The tokenizer's pad token, else eos (GPT-2 has none); padding is always masked."""
        pad = self.tokenizer.pad_token_id
        return self.eos_id if pad is None else int(pad)

    def encode_prompt(self, text: str) -> list[int]:
        """Prompt ids with the tokenizer's own special tokens (bos, when it adds one)."""
        return self.encode_prompts([text])[0]

    def encode_prompts(self, texts: list[str]) -> list[list[int]]:
        """`encode_prompt` for many texts in one tokenizer call."""
        if not texts:
            return []
        encoded = self.tokenizer(list(texts), add_special_tokens=True)["input_ids"]
        bos = self.tokenizer.bos_token_id
        # An empty prompt without bos: condition on bos/eos so there is a position to predict from.
        start = [self.eos_id if bos is None else int(bos)]
        return [list(ids) if len(ids) else start for ids in encoded]

    def encode_completion(self, text: str, eos: bool = True) -> list[int]:
        """Completion ids, no bos; eos appended (what the sampler emits when it stops)."""
        ids = list(self.tokenizer(text, add_special_tokens=False)["input_ids"])
        return ids + [self.eos_id] if eos else ids

    def decode(self, ids: list[int]) -> str:
        """Text of `ids` up to the first eos, special tokens dropped."""
        return self.decode_many([ids])[0]

    def decode_many(self, batch: list[list[int]]) -> list[str]:
        """`decode` for many sequences in one tokenizer call."""
        eos = self.eos_id
        cut = [list(ids[: ids.index(eos)]) if eos in ids else list(ids) for ids in batch]
        return self.tokenizer.batch_decode(cut, skip_special_tokens=True, clean_up_tokenization_spaces=False) if cut else []

    def _max_positions(self) -> int | None:
        limit = getattr(self.model.config, "max_position_embeddings", None)
        return limit if isinstance(limit, int) and limit > 0 else None

    def _check_length(self, tokens: int, what: str) -> None:
        """Past max positions GPT-2-style models index out of range and RoPE models degrade silently."""
        limit = self._max_positions()
        if limit is not None and tokens > limit:
            raise UserError(f"policy: {what} needs {tokens} positions but the model has max_position_embeddings={limit}; "
                            "shorten the prompts or lower max_new_tokens")

    # ---- log-probs ---------------------------------------------------------------------
    def token_logprobs(self, prompt_ids: list[list[int]], completion_ids: list[list[int]],
                       temperature: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
        """log p(completion token | prefix) [B, Lc_max] and a float mask [B, Lc_max], one forward.

        Layout: prompts left-padded, completions right-padded, so every completion starts
        at the same column and only its Lc_max + 1 logit positions are computed; position
        ids count real tokens only. Differentiable when called under grad.
        """
        if len(prompt_ids) != len(completion_ids):
            raise ValueError(f"{len(prompt_ids)} prompts but {len(completion_ids)} completions")
        batch = len(prompt_ids)
        width_p = max((len(p) for p in prompt_ids), default=0)
        width_c = max((len(c) for c in completion_ids), default=0)
        if batch == 0 or width_c == 0:
            return torch.zeros((batch, width_c)), torch.zeros((batch, width_c))
        if any(len(p) == 0 for p in prompt_ids):
            raise ValueError("every prompt needs at least one token (encode_prompt adds bos)")
        self._check_length(max(len(p) + len(c) for p, c in zip(prompt_ids, completion_ids)), "a prompt + completion")
        ids = torch.full((batch, width_p + width_c), self.pad_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for b, (p, c) in enumerate(zip(prompt_ids, completion_ids)):
            ids[b, width_p - len(p):width_p] = torch.tensor(p, dtype=torch.long)
            ids[b, width_p:width_p + len(c)] = torch.tensor(c, dtype=torch.long)
            mask[b, width_p - len(p):width_p + len(c)] = 1
        positions = (mask.cumsum(1) - 1).clamp(min=0)
        attention = None if bool(mask.all()) else mask
        # Positions width_p-1 .. width_p+width_c-2 predict the completion tokens.
        logits = forward_logits(self.model, ids, attention, positions, keep=width_c + 1)[:, :width_c]
        scale = temperature if temperature > 0 else 1.0
        logp = torch.log_softmax(logits.float() / scale, dim=-1)
        targets = ids[:, width_p:]
        cmask = mask[:, width_p:].float()
        return logp.gather(-1, targets[..., None]).squeeze(-1) * cmask, cmask

    # ---- sampling ----------------------------------------------------------------------
    def sample(self, prompts: list[str], n: int, temperature: float = 1.0, top_p: float = 1.0,
               max_new_tokens: int = 32, generator: torch.Generator | None = None, batch_size: int = 64,
               progress: Callable[[int], None] | None = None) -> list[list[Completion]]:
        """n completions per prompt with per-token log-probs; deterministic given `generator`.

        temperature 0 is greedy. `progress(k)` is called with the number of prompts each
        batch finished (an increment, like rich's `advance`).
        """
        prompt_ids = self.encode_prompts(prompts)
        if prompt_ids:  # a completion may stop early at the position limit, a prompt must fit with room for one token
            self._check_length(max(map(len, prompt_ids)) + 1, "the longest prompt")
        was_training = self.model.training
        self.model.eval()
        try:
            rollouts = sample_ids(self.model, prompt_ids, n,
                                  temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens,
                                  eos_id=self.eos_id, pad_id=self.pad_id, generator=generator,
                                  batch_size=batch_size, progress=progress, max_positions=self._max_positions())
        finally:
            self.model.train(was_training)
        texts = iter(self.decode_many([r.token_ids for group in rollouts for r in group]))
        return [[Completion(next(texts), r.token_ids, r.logprobs, r.finished) for r in group] for group in rollouts]

    def greedy(self, prompts: list[str], max_new_tokens: int = 32, batch_size: int = 128) -> list[str]:
        """Argmax decoding through the same sampler (temperature 0, one sample per prompt)."""
        groups = self.sample(prompts, n=1, temperature=0.0, max_new_tokens=max_new_tokens, batch_size=batch_size)
        return [g[0].text for g in groups]
