"""A policy's checkpoint on disk: load a Hugging Face directory (full model or LoRA adapter)
with one-line errors, save it back, and export merged weights.

transformers only warns on a checkpoint whose weights do not match its config (and fills
them at random), so loading checks that itself; a round's checkpoint is the adapter alone
when training LoRA, with the base recorded by path.
"""
from __future__ import annotations

import contextlib
import copy
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase
from transformers.utils import logging as hf_logging

from sharpen.errors import UserError, one_line
from sharpen.policy.device import resolve_device, resolve_dtype
from sharpen.policy.lora import apply_lora, is_peft

if TYPE_CHECKING:
    from sharpen.policy.policy import Policy

POLICY_FILE = "sharpen_policy.json"  # prompt format and base directory, next to a round's checkpoint


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
        raise UserError(f"checkpoint {path}: cannot load the model weights ({one_line(err)}); re-save the checkpoint") from None
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
        raise UserError(f"checkpoint {path}: cannot load the tokenizer ({one_line(err)}); save it next to the model with tokenizer.save_pretrained") from None


def load_checkpoint(path: str | Path, *, device: str = "cpu", dtype: str = "float32", prompt_format: str | None = None,
                    system_prompt: str | None = None, lora: Any = None, gradient_checkpointing: bool = False,
                    seed: int = 0) -> tuple[PreTrainedModel, PreTrainedTokenizerBase, dict[str, Any]]:
    """(model on its device in eval mode, tokenizer, the rest of `Policy`'s arguments) of a
    checkpoint directory: what `Policy.load` builds its policy from (see there)."""
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
    return model.to(dev).eval(), tokenizer, dict(device=dev, dtype=compute, prompt_format=fmt,
                                                 system_prompt=system, source_dir=base_dir)


def save_checkpoint(policy: "Policy", dir: str | Path) -> None:
    """`Policy.save`: the model (or with LoRA the adapter, its base recorded by path), the
    tokenizer and the prompt format."""
    dir = Path(dir)
    dir.mkdir(parents=True, exist_ok=True)
    with _no_progress_bars():
        if policy.is_lora:
            policy.model.peft_config["default"].base_model_name_or_path = str(policy.source_dir)
        policy.model.save_pretrained(dir, safe_serialization=True)
        policy.tokenizer.save_pretrained(dir)
    (dir / POLICY_FILE).write_text(json.dumps(
        {"prompt_format": policy.prompt_format, "system_prompt": policy.system_prompt,
         "base": str(policy.source_dir) if policy.is_lora else None}, indent=2) + "\n")


def save_merged(policy: "Policy", dir: str | Path) -> None:
    """`Policy.save_merged`: a plain HF directory with adapters merged in."""
    dir = Path(dir)
    model = policy.plain_model(dtype=torch.float32, device="cpu")
    with _no_progress_bars():
        model.save_pretrained(dir, safe_serialization=True)
        policy.tokenizer.save_pretrained(dir)
    (dir / POLICY_FILE).write_text(json.dumps(
        {"prompt_format": policy.prompt_format, "system_prompt": policy.system_prompt, "base": None}, indent=2) + "\n")


def save_adapter(policy: "Policy", dir: str | Path) -> None:
    """`Policy.save_adapter`: the PEFT adapter alone (adapter_config.json + adapter_model.safetensors)."""
    if not policy.is_lora:
        raise ValueError("save_adapter needs a LoRA policy")
    policy.model.peft_config["default"].base_model_name_or_path = str(policy.source_dir)
    with _no_progress_bars():
        policy.model.save_pretrained(dir, safe_serialization=True)


def plain_model(policy: "Policy", dtype: torch.dtype | None = None, device: torch.device | str | None = None) -> PreTrainedModel:
    """`Policy.plain_model`: a new transformers model (no PEFT) holding the merged weights."""
    base = policy.hf_model
    # skip the random init (9 s for 135M parameters here) that load_state_dict overwrites;
    # the RNG is forked in case a transformers version still draws
    with torch.random.fork_rng(devices=[]), _no_init_weights():
        model = AutoModelForCausalLM.from_config(copy.deepcopy(base.config), dtype=dtype or torch.float32)
    if getattr(base, "generation_config", None) is not None:
        model.generation_config = copy.deepcopy(base.generation_config)
    model = model.to(device=device or policy.device).eval().requires_grad_(False)
    model.load_state_dict(policy.merged_state_dict())
    return model
