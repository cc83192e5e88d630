"""LoRA through PEFT: adapters on a frozen base, the base as the reference, merged exports.

The reference model of a LoRA run is the same module with its adapters disabled
(`disable_adapter()`), not a copy: for an 8B checkpoint that is 16 GB of bf16 saved. A
round's checkpoint is the adapter alone (a few MB); `merged_state_dict` gives the full
weights under the base checkpoint's own names, for an engine sync or an HF export.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn


def apply_lora(model: nn.Module, r: int, alpha: float, dropout: float, target_modules: Any, seed: int) -> nn.Module:
    """Wrap `model` in fresh LoRA adapters (B = 0, so the wrapped model equals the base).

    lora_A's random init is drawn from `seed` alone (the global RNG is forked), so a run's
    adapters start the same in every process.
    """
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=target_modules,
                        task_type="CAUSAL_LM", bias="none")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return get_peft_model(model, config)


def is_peft(model: nn.Module) -> bool:
    try:
        from peft import PeftModel
    except ImportError:
        return False
    return isinstance(model, PeftModel)


def lora_rank(model: nn.Module) -> int | None:
    return int(model.peft_config["default"].r) if is_peft(model) else None


def merged_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The weights of the model as one plain HF model, on its device, adapters merged in
    (W + B A * alpha / r computed out of place: the trained module is left untouched).
    Unmerged tensors are detached views, not copies."""
    if not is_peft(model):
        return {k: v.detach() for k, v in model.state_dict().items()}
    from peft.tuners.lora import LoraLayer

    base = model.get_base_model()
    merged: dict[str, torch.Tensor] = {}
    lora_layers = {name: m for name, m in base.named_modules() if isinstance(m, LoraLayer)}
    for name, tensor in base.state_dict().items():
        if ".lora_" in name:
            continue
        layer_name, _, leaf = name.rpartition(".base_layer.")
        if layer_name and layer_name in lora_layers:
            plain = f"{layer_name}.{leaf}"
            value = tensor.detach()
            if leaf == "weight":
                value = value.float() + lora_layers[layer_name].get_delta_weight("default").detach().float()
            merged[plain] = value
        else:
            merged[name] = tensor.detach()
    return merged
