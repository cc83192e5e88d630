"""Where a policy runs and in what precision: `device` and `dtype` of `policy:` resolved once.

auto picks bfloat16 only where it pays: a CUDA device that supports it, or a CPU with
AVX-512 BF16 / AMX (on this machine's 2 EPYC cores bf16 autocast halved a SmolLM2 training
step, 12.2 s -> 6.4 s, docs/real-models.md), and only for models of at least
50M parameters: the 0.5M-parameter tiny model's ops are too small to gain, and its
calibrated float32 numbers stay reproducible.
"""
from __future__ import annotations

from functools import lru_cache

import torch

from sharpen.errors import UserError

BF16_MIN_PARAMETERS = 50_000_000


def resolve_device(name: str) -> torch.device:
    """auto -> cuda when available, else cpu; an explicit cuda device must exist."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UserError(f"policy.device: {name!r} is not a device; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UserError(f"policy.device: {name} but torch sees no CUDA device; set policy.device=cpu (or auto)")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise UserError(f"policy.device: {name} but only {torch.cuda.device_count()} CUDA device(s); use cuda:0..")
    elif device.type != "cpu":
        raise UserError(f"policy.device: {name!r} is not supported; use auto, cpu, cuda or cuda:N")
    return device


@lru_cache(maxsize=1)
def cpu_has_bf16() -> bool:
    """AVX-512 BF16 or AMX: the CPU features that make bf16 matmuls fast rather than emulated."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line for line in f if line.startswith("flags")), "")
    except OSError:
        return False
    return any(flag in flags.split() for flag in ("avx512_bf16", "amx_bf16"))


def supports_bf16(device: torch.device) -> bool:
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return cpu_has_bf16()


def resolve_dtype(name: str, device: torch.device, num_parameters: int) -> torch.dtype:
    """The compute dtype: float32, or bfloat16 (autocast over float32 master weights)."""
    if name == "float32":
        return torch.float32
    if name == "bfloat16":
        if not supports_bf16(device):
            raise UserError(f"policy.dtype: bfloat16 is not supported on {device} (no bf16 units); set policy.dtype=float32")
        return torch.bfloat16
    if name != "auto":
        raise UserError(f"policy.dtype: {name!r}; use auto, float32 or bfloat16")
    return torch.bfloat16 if supports_bf16(device) and num_parameters >= BF16_MIN_PARAMETERS else torch.float32
