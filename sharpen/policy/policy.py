"""`Policy`: the trainable model (a transformers causal LM, optionally with LoRA) and its tokenizer.

The built-in tiny model and any local Hugging Face checkpoint directory go through the
same code: `AutoModelForCausalLM` / `AutoTokenizer` to load, `save_pretrained` to save, a
prompt format (the tokenizer's chat template, or raw text), and one batched forward for
log-probs (what SFT, DPO and GRPO all differentiate). Sampling is not here: engines
(`sharpen.engines`) sample, and `sync` themselves to this policy's weights.
"""
from __future__ import annotations

import contextlib
import copy
import itertools
import json
from pathlib import Path
from typing import Any, Iterator, Sequence

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase
from transformers.utils import logging as hf_logging

from sharpen.errors import UserError
from sharpen.policy.device import resolve_device, resolve_dtype
from sharpen.policy.logprobs import chunked_token_logprobs
from sharpen.policy.lora import apply_lora, is_peft, lora_rank, merged_state_dict

POLICY_FILE = "sharpen_policy.json"  # prompt format and base directory, next to a round's checkpoint
# Weight versions are unique across every Policy object of a process: an engine that saw
# version v can never mistake a reloaded policy (ReST-EM's init: base) for the one it synced.
_VERSIONS = itertools.count(1)


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


def _no_init_weights() -> Any:
    try:
        from transformers.initialization import no_init_weights
    except ImportError:  # transformers 4.x
        from transformers.modeling_utils import no_init_weights
    return no_init_weights()


def _check_dir(path: Path) -> None:
    if not path.is_dir():
        raise UserError(f"checkpoint {path}: no such directory (expected a Hugging Face model directory saved with save_pretrained)")
    if not (path / "config.json").is_file() and not (path / "adapter_config.json").is_file():
        raise UserError(f"checkpoint {path}: no config.json (expected a Hugging Face model directory saved with save_pretrained)")


def _load_model(path: Path) -> PreTrainedModel:
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
    return model


def _load_tokenizer(path: Path) -> PreTrainedTokenizerBase:
    try:
        return AutoTokenizer.from_pretrained(path)
    except Exception as err:  # noqa: BLE001 - any failure here is a bad directory
        raise UserError(f"checkpoint {path}: cannot load the tokenizer ({_one_line(err)}); save it next to the model with tokenizer.save_pretrained") from None


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
        if prompt_format == "auto":
            prompt_format = "chat" if getattr(tokenizer, "chat_template", None) else "raw"
        if prompt_format == "chat" and not getattr(tokenizer, "chat_template", None):
            raise UserError("policy.prompt_format: chat, but the checkpoint's tokenizer has no chat template; "
                            "set policy.prompt_format=raw")
        self.prompt_format = prompt_format
        self.system_prompt = system_prompt
        self.source_dir = Path(source_dir) if source_dir else None
        self.frozen = frozen
        self.version = next(_VERSIONS)
        self._disable_adapter = False

    # ---- load / save -------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | Path, *, device: str = "cpu", dtype: str = "float32", prompt_format: str | None = None,
             system_prompt: str | None = None, lora: Any = None, gradient_checkpointing: bool = False,
             seed: int = 0) -> "Policy":
        """Load a `save_pretrained` directory, or a round checkpoint holding a LoRA adapter
        (its base is read from the adapter's `base_model_name_or_path`).

        `lora` (r, alpha, dropout, target_modules) wraps a full checkpoint in fresh adapters
        seeded from `seed`. `prompt_format` None takes the checkpoint's recorded format, else auto.
        """
        path = Path(path)
        _check_dir(path)
        saved = json.loads((path / POLICY_FILE).read_text()) if (path / POLICY_FILE).is_file() else {}
        adapter = (path / "adapter_config.json").is_file()
        base_dir = Path(json.loads((path / "adapter_config.json").read_text()).get("base_model_name_or_path") or "") if adapter else path
        if adapter:
            if not (base_dir / "config.json").is_file():
                raise UserError(f"checkpoint {path}: its LoRA adapter's base model {base_dir} is missing; "
                                "restore that directory or export a merged model with `sharpen export`")
        tokenizer = _load_tokenizer(path if (path / "tokenizer_config.json").is_file() else base_dir)
        model = _load_model(base_dir)
        dev = resolve_device(device)
        compute = resolve_dtype(dtype, dev, sum(p.numel() for p in model.parameters()))
        if adapter or lora is not None:
            # the frozen base is only read: store it in the compute dtype (half the memory in bf16)
            model = model.to(dtype=compute)
        if adapter:
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, path, is_trainable=True)
        elif lora is not None:
            model = apply_lora(model, lora.r, lora.alpha, lora.dropout, lora.target_modules, seed)
        if is_peft(model):  # adapters train in float32 whatever the base's dtype
            for name, p in model.named_parameters():
                if p.requires_grad:
                    p.data = p.data.float()
        if gradient_checkpointing:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        fmt = prompt_format if prompt_format not in (None, "auto") else saved.get("prompt_format", "auto")
        system = system_prompt if system_prompt is not None else saved.get("system_prompt")
        return cls(model.to(dev).eval(), tokenizer, device=dev, dtype=compute, prompt_format=fmt,
                   system_prompt=system, source_dir=base_dir)

    def save(self, dir: str | Path) -> None:
        """Write the checkpoint: a full model (safetensors), or with LoRA the adapter alone
        (its base recorded by path), plus the tokenizer and the prompt format."""
        dir = Path(dir)
        dir.mkdir(parents=True, exist_ok=True)
        with _no_progress_bars():
            if self.is_lora:
                self.model.peft_config["default"].base_model_name_or_path = str(self.source_dir)
            self.model.save_pretrained(dir, safe_serialization=True)
            self.tokenizer.save_pretrained(dir)
        (dir / POLICY_FILE).write_text(json.dumps(
            {"prompt_format": self.prompt_format, "system_prompt": self.system_prompt,
             "base": str(self.source_dir) if self.is_lora else None}, indent=2) + "\n")

    def save_merged(self, dir: str | Path) -> None:
        """A plain HF directory with adapters merged in: loads anywhere without PEFT or sharpen."""
        dir = Path(dir)
        model = self.plain_model(dtype=torch.float32, device="cpu")
        with _no_progress_bars():
            model.save_pretrained(dir, safe_serialization=True)
            self.tokenizer.save_pretrained(dir)
        (dir / POLICY_FILE).write_text(json.dumps(
            {"prompt_format": self.prompt_format, "system_prompt": self.system_prompt, "base": None}, indent=2) + "\n")

    def save_adapter(self, dir: str | Path) -> None:
        """The PEFT adapter alone (adapter_config.json + adapter_model.safetensors), e.g. for vLLM."""
        if not self.is_lora:
            raise ValueError("save_adapter needs a LoRA policy")
        self.model.peft_config["default"].base_model_name_or_path = str(self.source_dir)
        with _no_progress_bars():
            self.model.save_pretrained(dir, safe_serialization=True)

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

    def plain_model(self, dtype: torch.dtype | None = None, device: torch.device | str | None = None) -> PreTrainedModel:
        """A new plain transformers model (no PEFT) holding this policy's merged weights:
        what an engine samples from and what `save_merged` writes."""
        base = self.model.get_base_model() if self.is_lora else self.model
        # skip the random init (9 s for 135M parameters here) that load_state_dict overwrites;
        # the RNG is forked in case a transformers version still draws
        with torch.random.fork_rng(devices=[]), _no_init_weights():
            model = AutoModelForCausalLM.from_config(copy.deepcopy(base.config), dtype=dtype or torch.float32)
        if getattr(base, "generation_config", None) is not None:
            model.generation_config = copy.deepcopy(base.generation_config)
        model = model.to(device=device or self.device).eval().requires_grad_(False)
        model.load_state_dict(self.merged_state_dict())
        return model

    def merged_state_dict(self) -> dict[str, torch.Tensor]:
        """The weights as one plain HF model, adapters merged in (not copies where no merge
        is needed: load them with `load_state_dict`, which copies)."""
        return merged_state_dict(self.model)

    def export_weights(self) -> Iterator[tuple[str, torch.Tensor]]:
        """(name, float32 CPU tensor) of the merged weights, under the base checkpoint's names."""
        for name, tensor in self.merged_state_dict().items():
            yield name, tensor.detach().to("cpu", torch.float32)

    # ---- facts -------------------------------------------------------------------------
    @property
    def is_lora(self) -> bool:
        return is_peft(self.model)

    @property
    def lora_rank(self) -> int | None:
        return lora_rank(self.model)

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
        base = self.model.get_base_model() if self.is_lora else self.model
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
        """The prompt as the model sees it: the chat template (user turn, optional system
        turn, generation prompt) or the raw text."""
        if self.prompt_format != "chat":
            return text
        messages = ([{"role": "system", "content": self.system_prompt}] if self.system_prompt else []) + \
            [{"role": "user", "content": text}]
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def encode_prompt(self, text: str) -> list[int]:
        """Prompt ids in the policy's prompt format."""
        return self.encode_prompts([text])[0]

    def encode_prompts(self, texts: Sequence[str]) -> list[list[int]]:
        """`encode_prompt` for many texts in one tokenizer call. Raw prompts get the
        tokenizer's own special tokens (bos); a chat template writes its own."""
        if not texts:
            return []
        if self.prompt_format == "chat":
            rendered = [self.render_prompt(t) for t in texts]
            encoded = self.tokenizer(rendered, add_special_tokens=False)["input_ids"]
        else:
            encoded = self.tokenizer(list(texts), add_special_tokens=True)["input_ids"]
        bos = self.tokenizer.bos_token_id
        # An empty prompt without bos: condition on bos/eos so there is a position to predict from.
        start = [self.eos_id if bos is None else int(bos)]
        return [list(ids) if len(ids) else start for ids in encoded]

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

    def max_positions(self) -> int | None:
        base = self.model.get_base_model() if self.is_lora else self.model
        limit = getattr(base.config, "max_position_embeddings", None)
        return limit if isinstance(limit, int) and limit > 0 else None

    def check_length(self, tokens: int, what: str) -> None:
        """Past max positions GPT-2-style models index out of range and RoPE models degrade silently."""
        limit = self.max_positions()
        if limit is not None and tokens > limit:
            raise UserError(f"policy: {what} needs {tokens} positions but the model has max_position_embeddings={limit}; "
                            "shorten the prompts or lower max_new_tokens")

    # ---- log-probs ---------------------------------------------------------------------
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
        lp, _, mask = self._token_terms(prompt_ids, completion_ids, temperature, vocab_mean=False)
        return lp, mask

    @torch.no_grad()
    def vocab_mean_logprobs(self, prompt_ids: list[list[int]], completion_ids: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        """mean_j log p(j | prefix) at every completion position [B, Lc_max], and the mask:
        self-certainty's KL(U || p) = -log V - this (Intuitor)."""
        _, mean, mask = self._token_terms(prompt_ids, completion_ids, 1.0, vocab_mean=True)
        return mean, mask

    @torch.no_grad()
    def next_token_logprobs(self, prompt_ids: list[list[int]], candidates: Sequence[int]) -> torch.Tensor:
        """log p(candidate | prompt) [B, len(candidates)] at the first completion position, on
        the policy's device: a judge's verdict distribution from one forward (no sampling, so
        no parsed number). Layout as in `_token_terms`: prompts left-padded, position ids count
        real tokens, LoRA adapters off for a `reference()` view; the head runs on the last
        column only."""
        cols = torch.tensor(list(candidates), dtype=torch.long, device=self.device)
        if not prompt_ids:
            return torch.zeros((0, len(cols)), device=self.device)
        if any(len(p) == 0 for p in prompt_ids):
            raise ValueError("every prompt needs at least one token (encode_prompt adds bos)")
        width = max(len(p) for p in prompt_ids)
        self.check_length(width + 1, "a judge prompt + its verdict")
        ids = torch.full((len(prompt_ids), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for b, p in enumerate(prompt_ids):
            ids[b, width - len(p):] = torch.tensor(p, dtype=torch.long)
            mask[b, width - len(p):] = 1
        ids, mask = ids.to(self.device), mask.to(self.device)
        positions = (mask.cumsum(1) - 1).clamp(min=0)
        attention = None if bool(mask.all()) else mask
        adapters = self.model.disable_adapter() if self._disable_adapter else contextlib.nullcontext()
        with adapters, self.autocast():
            body, head = self._body_and_head()
            if body is not None:
                hidden = body(input_ids=ids, attention_mask=attention, position_ids=positions, use_cache=False).last_hidden_state
                logits = head(hidden[:, -1])
            else:  # a head that is more than one linear map (softcapping, logit scale)
                logits = self.model(input_ids=ids, attention_mask=attention, position_ids=positions,
                                    use_cache=False).logits[:, -1]
        return torch.log_softmax(logits.float(), dim=-1)[:, cols]

    def vocab_size(self) -> int:
        base = self.model.get_base_model() if self.is_lora else self.model
        return int(base.get_output_embeddings().weight.shape[0])

    def _token_terms(self, prompt_ids: list[list[int]], completion_ids: list[list[int]], temperature: float,
                     vocab_mean: bool) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        if len(prompt_ids) != len(completion_ids):
            raise ValueError(f"{len(prompt_ids)} prompts but {len(completion_ids)} completions")
        batch = len(prompt_ids)
        width_p = max((len(p) for p in prompt_ids), default=0)
        width_c = max((len(c) for c in completion_ids), default=0)
        if batch == 0 or width_c == 0:
            zeros = torch.zeros((batch, width_c), device=self.device)
            return zeros, zeros, zeros
        if any(len(p) == 0 for p in prompt_ids):
            raise ValueError("every prompt needs at least one token (encode_prompt adds bos)")
        self.check_length(max(len(p) + len(c) for p, c in zip(prompt_ids, completion_ids)), "a prompt + completion")
        ids = torch.full((batch, width_p + width_c), self.pad_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for b, (p, c) in enumerate(zip(prompt_ids, completion_ids)):
            ids[b, width_p - len(p):width_p] = torch.tensor(p, dtype=torch.long)
            ids[b, width_p:width_p + len(c)] = torch.tensor(c, dtype=torch.long)
            mask[b, width_p - len(p):width_p + len(c)] = 1
        ids, mask = ids.to(self.device), mask.to(self.device)
        positions = (mask.cumsum(1) - 1).clamp(min=0)
        attention = None if bool(mask.all()) else mask
        cmask = mask[:, width_p:].bool()
        targets = ids[:, width_p:][cmask]
        adapters = self.model.disable_adapter() if self._disable_adapter else contextlib.nullcontext()
        with adapters, self.autocast():
            body, head = self._body_and_head()
            if body is not None:
                hidden = body(input_ids=ids, attention_mask=attention, position_ids=positions, use_cache=False).last_hidden_state
                # positions width_p-1 .. width_p+width_c-2 predict the completion tokens
                rows = hidden[:, width_p - 1:width_p + width_c - 1][cmask]
                lp_flat, mean_flat = chunked_token_logprobs(head, rows, targets, temperature, vocab_mean=vocab_mean)
            else:  # an architecture whose head is more than one linear map (softcapping, logit scale)
                logits = self.model(input_ids=ids, attention_mask=attention, position_ids=positions,
                                    use_cache=False).logits[:, width_p - 1:width_p + width_c - 1][cmask]
                lp_flat, mean_flat = chunked_token_logprobs(lambda x: x, logits, targets, temperature, vocab_mean=vocab_mean)
        lp = torch.zeros((batch, width_c), dtype=lp_flat.dtype, device=self.device)
        lp = lp.masked_scatter(cmask, lp_flat)
        mean = None
        if mean_flat is not None:
            mean = torch.zeros((batch, width_c), dtype=mean_flat.dtype, device=self.device).masked_scatter(cmask, mean_flat)
        return lp, mean, cmask.float()

    def _body_and_head(self) -> tuple[Any, Any]:
        """(decoder that returns hidden states, LM head) when logits are exactly head(hidden)."""
        base = self.model.get_base_model() if self.is_lora else self.model
        cfg = base.config
        if getattr(cfg, "final_logit_softcapping", None) or getattr(cfg, "logit_scale", None) not in (None, 1, 1.0):
            return None, None
        body, head = base.base_model, base.get_output_embeddings()
        if body is base or head is None:
            return None, None
        return body, head
