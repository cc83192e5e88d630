"""LoRA through PEFT: adapters start at zero, the reference is the base with adapters off,
a round checkpoint is the adapter alone and reloads exactly, and a merged export is plain HF."""
from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM

from sharpen.config import LoRAConfig
from sharpen.objectives.sft import sft_loss
from sharpen.objectives.trainer import fit
from sharpen.policy import Policy

LORA = LoRAConfig(r=4, alpha=8)
P, C = "12+3=", "51"


def _lp(policy):
    with torch.no_grad():
        lp, _ = policy.token_logprobs([policy.encode_prompt(P)], [policy.encode_completion(C)])
    return lp


def _train(policy, steps=5):
    def loss_fn(batch):
        lp, mask = policy.token_logprobs([policy.encode_prompt(P)] * len(batch), [policy.encode_completion(C)] * len(batch))
        return sft_loss(lp, mask), {}
    fit(policy, list(range(4)), loss_fn, lr=1e-2, epochs=steps, batch_size=4, generator=torch.Generator().manual_seed(0))


@pytest.fixture
def lora_policy(tiny_checkpoint):
    return Policy.load(tiny_checkpoint, lora=LORA, seed=0)


def test_fresh_adapters_equal_the_base_and_train_only_adapters(lora_policy, tiny_checkpoint):
    base = Policy.load(tiny_checkpoint)
    assert lora_policy.is_lora and lora_policy.lora_rank == 4
    assert torch.allclose(_lp(lora_policy), _lp(base), atol=1e-6)  # B = 0 at init
    names = [n for n, p in lora_policy.model.named_parameters() if p.requires_grad]
    assert names and all("lora_" in n for n in names)
    assert sum(p.numel() for p in lora_policy.trainable_parameters()) < 0.1 * lora_policy.num_parameters()


def test_reference_is_the_base_with_adapters_disabled_not_a_copy(lora_policy, tiny_checkpoint):
    before = _lp(lora_policy)
    ref = lora_policy.reference()
    _train(lora_policy)
    assert ref.model is lora_policy.model  # same module: no second copy of the weights
    assert not torch.allclose(_lp(lora_policy), before, atol=1e-3)
    assert torch.allclose(_lp(ref), _lp(Policy.load(tiny_checkpoint)), atol=1e-6)


def test_checkpoint_is_the_adapter_and_reloads_exactly(lora_policy, tmp_path):
    _train(lora_policy)
    lora_policy.save(tmp_path / "ckpt")
    files = {p.name for p in (tmp_path / "ckpt").iterdir()}
    assert "adapter_model.safetensors" in files and "model.safetensors" not in files
    again = Policy.load(tmp_path / "ckpt", lora=LORA)
    assert again.is_lora and torch.equal(_lp(again), _lp(lora_policy))


def test_merged_export_is_a_plain_model_with_the_same_outputs(lora_policy, tmp_path):
    from sharpen import api

    _train(lora_policy)
    lora_policy.save(tmp_path / "ckpt")
    out = api.export(tmp_path / "ckpt", tmp_path / "merged")
    assert not (out / "adapter_config.json").exists()
    plain = Policy.load(out)
    assert not plain.is_lora and torch.allclose(_lp(plain), _lp(lora_policy), atol=1e-5)
    assert AutoModelForCausalLM.from_pretrained(out) is not None  # loads without PEFT or sharpen


def test_a_missing_adapter_base_is_a_clear_error(tiny_checkpoint, tmp_path):
    import json
    import shutil

    from sharpen.errors import UserError

    base = tmp_path / "base"
    shutil.copytree(tiny_checkpoint, base)
    Policy.load(base, lora=LORA).save(tmp_path / "ckpt")
    shutil.rmtree(base)
    with pytest.raises(UserError, match="base model .* is missing"):
        Policy.load(tmp_path / "ckpt")
    assert json.loads((tmp_path / "ckpt" / "adapter_config.json").read_text())["base_model_name_or_path"] == str(base)
