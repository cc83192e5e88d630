"""A reward model: a scalar head on a causal-LM backbone, read at the last token.

It is `AutoModelForSequenceClassification` with one label, so a saved RM directory loads
with transformers alone (LoRA adapters are merged before saving). The input is the prompt
as the policy saw it (raw text, or the chat template of an instruct checkpoint) followed by
the completion; no eos is appended, so the last token is the completion's own even where a
tokenizer's pad token is its eos.
"""
from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any, Iterator, Sequence

import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer
from transformers.utils import logging as hf_logging

from sharpen.errors import UserError, one_line
from sharpen.policy.prompt_format import render_prompt, resolve_prompt_format

META_FILE = "sharpen_rm.json"  # marks a directory as a sharpen reward model: how to render its inputs


@contextlib.contextmanager
def quiet_hf() -> Iterator[None]:
    """No per-file load/save bars, no "newly initialized weights" warning (the head is new on purpose)."""
    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def load_with_head(auto_class: Any, path: Path, seed: int, what: str, labels: int = 1) -> tuple[Any, Any]:
    """(model with a fresh `labels`-output head seeded by `seed`, tokenizer) from a causal-LM checkpoint."""
    torch.manual_seed(seed)
    try:
        with quiet_hf():
            return (auto_class.from_pretrained(path, num_labels=labels, dtype=torch.float32),
                    AutoTokenizer.from_pretrained(path))
    except (OSError, ValueError) as err:
        raise UserError(f"--backbone {path}: cannot load it as a {what} backbone ({one_line(err)})") from None


class RewardModel:
    """Scores (prompt, completion) pairs with one number per head; higher is better.

    Most RMs have one head. `heads` > 1 is the cheap ensemble (as oat does): k linear heads
    on one frozen backbone, each trained on its own bootstrap sample; `score_members` gives
    every head's scores and `score` their mean."""

    def __init__(self, model: Any, tokenizer: Any, prompt_format: str = "raw", system_prompt: str | None = None,
                 meta: dict[str, Any] | None = None) -> None:
        self.model, self.tokenizer = model, tokenizer
        self.prompt_format, self.system_prompt = prompt_format, system_prompt
        self.meta = dict(meta or {})
        if tokenizer.pad_token_id is None:  # SmolLM2's GGUF tokenizer, for one
            tokenizer.pad_token = tokenizer.eos_token
        model.config.pad_token_id = tokenizer.pad_token_id

    @classmethod
    def from_backbone(cls, path: str | Path, prompt_format: str = "auto", system_prompt: str | None = None,
                      lora_r: int | None = None, seed: int = 0, heads: int = 1) -> "RewardModel":
        """A fresh head (seeded) on a causal-LM checkpoint; with `lora_r`, LoRA adapters on
        every linear layer and the head trained in full; with `heads` > 1, that many heads on
        a frozen backbone."""
        path = Path(path)
        if not (path / "config.json").is_file():
            raise UserError(f"--backbone {path}: no config.json; give a Hugging Face model directory")
        model, tokenizer = load_with_head(AutoModelForSequenceClassification, path, seed, "reward-model", heads)
        if heads > 1:
            for name, param in model.named_parameters():
                param.requires_grad = name.startswith("score.")
        elif lora_r:
            from peft import LoraConfig, get_peft_model

            model = get_peft_model(model, LoraConfig(r=lora_r, lora_alpha=2 * lora_r, target_modules="all-linear",
                                                     task_type="SEQ_CLS", bias="none"))
        fmt = resolve_prompt_format(tokenizer, prompt_format)
        return cls(model, tokenizer, fmt, system_prompt, {"backbone": str(path)})

    @classmethod
    def load(cls, path: str | Path, field: str = "--rm") -> "RewardModel":
        """A directory `save` wrote; anything else is one line naming `field`."""
        path = Path(path)
        if not (path / META_FILE).is_file():
            raise UserError(f"{field} {path}: holds no reward model (no {META_FILE}); train one with `sharpen rm train`")
        meta = json.loads((path / META_FILE).read_text())
        try:
            with quiet_hf():
                model = AutoModelForSequenceClassification.from_pretrained(path, dtype=torch.float32)
                tokenizer = AutoTokenizer.from_pretrained(path)
        except (OSError, ValueError) as err:
            raise UserError(f"{field} {path}: cannot load the reward model ({one_line(err)}); train it again") from None
        return cls(model.eval(), tokenizer, meta.get("prompt_format", "raw"), meta.get("system_prompt"), meta)

    def save(self, path: Path) -> None:
        model = self.model.merge_and_unload() if hasattr(self.model, "merge_and_unload") else self.model
        with quiet_hf():
            model.save_pretrained(path)
        self.tokenizer.save_pretrained(path)
        meta = {**self.meta, "prompt_format": self.prompt_format, "system_prompt": self.system_prompt}
        (path / META_FILE).write_text(json.dumps(meta, indent=2) + "\n")

    def encode(self, prompts: Sequence[str], completions: Sequence[str]) -> list[list[int]]:
        out = []
        for p, c in zip(prompts, completions):
            if self.prompt_format == "chat":
                ids = self.tokenizer(render_prompt(self.tokenizer, "chat", self.system_prompt, p),
                                     add_special_tokens=False)["input_ids"]
            else:
                ids = self.tokenizer(p, add_special_tokens=True)["input_ids"]
            out.append(list(ids) + list(self.tokenizer(c, add_special_tokens=False)["input_ids"]))
        return out

    @property
    def heads(self) -> int:
        return int(self._base().config.num_labels)

    def forward(self, ids: list[list[int]]) -> torch.Tensor:
        """[B] rewards (one head) or [B, heads], with grad."""
        out = self.head(self.features(ids))
        return out.squeeze(-1) if out.shape[-1] == 1 else out

    def head(self, features: torch.Tensor) -> torch.Tensor:
        return self._head()(features).float()

    def features(self, ids: list[list[int]]) -> torch.Tensor:
        """[B, hidden] at the last token. Left-padded, so the last position is every row's last token."""
        width = max(len(x) for x in ids)
        pad = self.tokenizer.pad_token_id
        input_ids = torch.tensor([[pad] * (width - len(x)) + x for x in ids])
        mask = torch.tensor([[0] * (width - len(x)) + [1] * len(x) for x in ids])
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        hidden = self._backbone()(input_ids=input_ids, attention_mask=mask, position_ids=positions).last_hidden_state
        return hidden[:, -1]

    @torch.no_grad()
    def score_members(self, prompts: Sequence[str], completions: Sequence[str], batch_size: int = 64) -> list[list[float]]:
        """[heads][samples]: each head's scores."""
        was = self.model.training
        self.model.eval()
        ids = self.encode(prompts, completions)
        rows: list[torch.Tensor] = []
        for i in range(0, len(ids), batch_size):
            rows.append(self.head(self.features(ids[i:i + batch_size])))
        self.model.train(was)
        return torch.cat(rows).T.tolist() if rows else [[] for _ in range(self.heads)]

    def score(self, prompts: Sequence[str], completions: Sequence[str], batch_size: int = 64) -> list[float]:
        """One score a sample (several heads: their mean)."""
        members = self.score_members(prompts, completions, batch_size)
        return [sum(col) / len(col) for col in zip(*members)] if members and members[0] else []

    def _base(self) -> Any:
        return self.model.get_base_model() if hasattr(self.model, "get_base_model") else self.model

    def _backbone(self) -> Any:
        return getattr(self._base(), self._base().base_model_prefix)

    def _head(self) -> Any:
        return self._base().score
