"""`Policy`: the trainable model (a transformers causal LM, optionally with LoRA) and its tokenizer.

The built-in tiny model and any local Hugging Face checkpoint directory go through the
same code: `AutoModelForCausalLM` / `AutoTokenizer` to load, `save_pretrained` to save, a
prompt format (the tokenizer's chat template, or raw text), and one batched forward for
log-probs (what SFT, DPO and GRPO all differentiate). Sampling is not here: engines
(`sharpen.engines`) sample, and `sync` themselves to this policy's weights.

The class is the interface; the work is in one module per concern: `io` (load, save,
merged export), `prompt_format` (chat template or raw), `logprobs` (the batched forward
and its maths), `device` (device and dtype), `lora` (adapters).
"""
from __future__ import annotations

import contextlib
import copy
import itertools
from pathlib import Path
from typing import Any, Iterator, Sequence

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from sharpen.errors import UserError
from sharpen.policy import io, logprobs
from sharpen.policy.lora import is_peft, lora_rank, merged_state_dict
from sharpen.policy.prompt_format import encode_prompts, render_prompt, resolve_prompt_format

# Weight versions are unique across every Policy object of a process: an engine that saw
# version v can never mistake a reloaded policy (ReST-EM's init: base) for the one it synced.
_VERSIONS = itertools.count(1)


class Policy:
    """A causal LM and its tokenizer, with a device, a compute dtype and a prompt format.

    Weights being trained stay float32 (AdamW on bf16 weights loses small updates); with
    dtype bfloat16 the forward runs under autocast, and a LoRA base, which never trains,
    is stored in bf16. `version` counts optimizer steps, so an engine knows when to sync.
    """

    def __init__(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, *,
                 device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32,
                 prompt_format: str = "auto", system_prompt: str | None = None,
                 source_dir: Path | None = None, frozen: bool = False) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.device = torch.device(device)
        self.dtype = dtype
        self.prompt_format = resolve_prompt_format(tokenizer, prompt_format)
        self.system_prompt = system_prompt
        self.source_dir = Path(source_dir) if source_dir else None
        self.frozen = frozen
        self.version = next(_VERSIONS)
        self._disable_adapter = False

    # ---- load / save (sharpen.policy.io) -----------------------------------------------
    @classmethod
    def load(cls, path: str | Path, *, device: str = "cpu", dtype: str = "float32", prompt_format: str | None = None,
             system_prompt: str | None = None, lora: Any = None, gradient_checkpointing: bool = False,
             seed: int = 0) -> "Policy":
        """Load a `save_pretrained` directory, or a round checkpoint holding a LoRA adapter
        (its base is read from the adapter's `base_model_name_or_path`).

        `lora` (r, alpha, dropout, target_modules) wraps a full checkpoint in fresh adapters
        seeded from `seed`. `prompt_format` None takes the checkpoint's recorded format, else auto.
        """
        model, tokenizer, kwargs = io.load_checkpoint(
            path, device=device, dtype=dtype, prompt_format=prompt_format, system_prompt=system_prompt, lora=lora,
            gradient_checkpointing=gradient_checkpointing, seed=seed)
        return cls(model, tokenizer, **kwargs)

    def save(self, dir: str | Path) -> None:
        """Write the checkpoint: a full model (safetensors), or with LoRA the adapter alone
        (its base recorded by path), plus the tokenizer and the prompt format."""
        io.save_checkpoint(self, dir)

    def save_merged(self, dir: str | Path) -> None:
        """A plain HF directory with adapters merged in: loads anywhere without PEFT or sharpen."""
        io.save_merged(self, dir)

    def save_adapter(self, dir: str | Path) -> None:
        """The PEFT adapter alone (adapter_config.json + adapter_model.safetensors), e.g. for vLLM."""
        io.save_adapter(self, dir)

    def plain_model(self, dtype: torch.dtype | None = None, device: torch.device | str | None = None) -> PreTrainedModel:
        """A new plain transformers model (no PEFT) holding this policy's merged weights:
        what an engine samples from and what `save_merged` writes."""
        return io.plain_model(self, dtype, device)

    def merged_state_dict(self) -> dict[str, torch.Tensor]:
        """The weights as one plain HF model, adapters merged in (not copies where no merge
        is needed: load them with `load_state_dict`, which copies)."""
        return merged_state_dict(self.model)

    def export_weights(self) -> Iterator[tuple[str, torch.Tensor]]:
        """(name, float32 CPU tensor) of the merged weights, under the base checkpoint's names."""
        for name, tensor in self.merged_state_dict().items():
            yield name, tensor.detach().to("cpu", torch.float32)

    # ---- references --------------------------------------------------------------------
    def copy(self) -> "Policy":
        """A frozen deep copy (eval, no gradients): a reference model for DPO/GRPO/KL."""
        model = copy.deepcopy(self.model).eval()
        model.requires_grad_(False)
        return self._view(model)

    def reference(self) -> "Policy":
        """The policy's starting weights, frozen: with LoRA the same module with adapters
        disabled (no copy); a full model is copied."""
        if not self.is_lora:
            return self.copy()
        view = self._view(self.model)
        view._disable_adapter = True
        return view

    def _view(self, model: PreTrainedModel) -> "Policy":
        view = Policy(model, self.tokenizer, device=self.device, dtype=self.dtype, prompt_format=self.prompt_format,
                      system_prompt=self.system_prompt, source_dir=self.source_dir, frozen=True)
        return view

    def adapter_context(self) -> Any:
        """Where every forward runs: adapters disabled for a LoRA `reference()` view, else a no-op."""
        return self.model.disable_adapter() if self._disable_adapter else contextlib.nullcontext()

    # ---- facts -------------------------------------------------------------------------
    @property
    def is_lora(self) -> bool:
        return is_peft(self.model)

    @property
    def lora_rank(self) -> int | None:
        return lora_rank(self.model)

    @property
    def hf_model(self) -> PreTrainedModel:
        """The transformers model itself, under the PEFT wrapper of a LoRA policy."""
        return self.model.get_base_model() if self.is_lora else self.model

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        return [p for p in self.model.parameters() if p.requires_grad]

    @contextlib.contextmanager
    def train_mode(self) -> Iterator[None]:
        """Train mode (dropout, gradient checkpointing) inside; always eval mode after."""
        self.model.train()
        try:
            yield
        finally:
            self.model.eval()

    def stepped(self) -> None:
        """Record that the weights changed (called after every optimizer step)."""
        self.version = next(_VERSIONS)

    def max_positions(self) -> int | None:
        limit = getattr(self.hf_model.config, "max_position_embeddings", None)
        return limit if isinstance(limit, int) and limit > 0 else None

    def check_length(self, tokens: int, what: str) -> None:
        """Past max positions GPT-2-style models index out of range and RoPE models degrade silently."""
        limit = self.max_positions()
        if limit is not None and tokens > limit:
            raise UserError(f"policy: {what} needs {tokens} positions but the model has max_position_embeddings={limit}; "
                            "shorten the prompts or lower max_new_tokens")

    def vocab_size(self) -> int:
        return int(self.hf_model.get_output_embeddings().weight.shape[0])

    # ---- tokens ------------------------------------------------------------------------
    @property
    def eos_id(self) -> int:
        """The token a completion ends with (appended when training on a completion)."""
        eos = self.tokenizer.eos_token_id
        if eos is None:
            ids = self._config_eos_ids()
            eos = ids[0] if ids else None
        if eos is None:
            raise UserError("policy: the tokenizer has no eos token; set tokenizer.eos_token before saving the checkpoint")
        return int(eos)

    def _config_eos_ids(self) -> list[int]:
        base = self.hf_model
        ids: list[int] = []
        for cfg in (getattr(base, "generation_config", None), base.config):
            eos = getattr(cfg, "eos_token_id", None) if cfg is not None else None
            ids += [int(e) for e in (eos if isinstance(eos, (list, tuple)) else [eos]) if e is not None]
        return ids

    @property
    def stop_ids(self) -> tuple[int, ...]:
        """Every end token: the tokenizer's eos and all of generation_config's eos ids (an
        instruct model may end a turn with a token that is not the tokenizer's eos)."""
        ids = [self.eos_id] + self._config_eos_ids()
        return tuple(dict.fromkeys(ids))

    @property
    def pad_id(self) -> int:
        """The tokenizer's pad token, else eos (GPT-2 has none); padding is always masked."""
        pad = self.tokenizer.pad_token_id
        return self.eos_id if pad is None else int(pad)

    def render_prompt(self, text: str) -> str:
        """The prompt as the model sees it (`sharpen.policy.prompt_format`)."""
        return render_prompt(self.tokenizer, self.prompt_format, self.system_prompt, text)

    def encode_prompt(self, text: str) -> list[int]:
        """Prompt ids in the policy's prompt format."""
        return self.encode_prompts([text])[0]

    def encode_prompts(self, texts: Sequence[str]) -> list[list[int]]:
        """`encode_prompt` for many texts in one tokenizer call. Raw prompts get the
        tokenizer's own special tokens (bos); a chat template writes its own."""
        return encode_prompts(self.tokenizer, self.prompt_format, self.system_prompt, texts, lambda: self.eos_id)

    def encode_completion(self, text: str, eos: bool = True) -> list[int]:
        """Completion ids, no bos; eos appended (what the sampler emits when it stops)."""
        ids = list(self.tokenizer(text, add_special_tokens=False)["input_ids"])
        return ids + [self.eos_id] if eos else ids

    def decode(self, ids: Sequence[int]) -> str:
        """Text of `ids` up to the first stop token, special tokens dropped."""
        return self.decode_many([ids])[0]

    def decode_many(self, batch: Sequence[Sequence[int]]) -> list[str]:
        """`decode` for many sequences in one tokenizer call."""
        stops = set(self.stop_ids)
        cut = []
        for ids in batch:
            ids = list(ids)
            end = next((i for i, t in enumerate(ids) if t in stops), len(ids))
            cut.append(ids[:end])
        return self.tokenizer.batch_decode(cut, skip_special_tokens=True, clean_up_tokenization_spaces=False) if cut else []

    # ---- log-probs (sharpen.policy.logprobs) -------------------------------------------
    def autocast(self) -> Any:
        """bf16 autocast when the compute dtype is bf16 (a no-op context otherwise)."""
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.dtype == torch.bfloat16)

    def token_logprobs(self, prompt_ids: list[list[int]], completion_ids: list[list[int]],
                       temperature: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
        """log p(completion token | prefix) [B, Lc_max] and a float mask [B, Lc_max], one forward.

        Layout: prompts left-padded, completions right-padded, so every completion starts
        at the same column; position ids count real tokens only. The LM head runs only on
        completion positions, in chunks (`sharpen.policy.logprobs`). Differentiable under grad.
        """
        lp, _, mask = logprobs.token_terms(self, prompt_ids, completion_ids, temperature, vocab_mean=False)
        return lp, mask

    @torch.no_grad()
    def vocab_mean_logprobs(self, prompt_ids: list[list[int]], completion_ids: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        """mean_j log p(j | prefix) at every completion position [B, Lc_max], and the mask:
        self-certainty's KL(U || p) = -log V - this (Intuitor)."""
        _, mean, mask = logprobs.token_terms(self, prompt_ids, completion_ids, 1.0, vocab_mean=True)
        return mean, mask

    @torch.no_grad()
    def next_token_logprobs(self, prompt_ids: list[list[int]], candidates: Sequence[int]) -> torch.Tensor:
        """log p(candidate | prompt) [B, len(candidates)] at the first completion position, on
        the policy's device: a judge's verdict distribution from one forward (no sampling, so
        no parsed number). Layout as in `token_logprobs`; LoRA adapters off for a
        `reference()` view; the head runs on the last column only."""
        return logprobs.next_token_logprobs(self, prompt_ids, candidates)
