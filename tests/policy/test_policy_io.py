"""Policy: the tiny model's shape and seeding, save/load, load errors, copy, encoding, token_logprobs."""
from __future__ import annotations

import pytest
import torch
from safetensors.torch import load as load_safetensors, save_file

from sharpen.errors import UserError
from sharpen.policy import Policy, new_tiny_policy, tiny_config
from sharpen.engines.hf import sample


@pytest.fixture(scope="module")
def policy():
    return new_tiny_policy(0)


def test_tiny_model_is_the_calibrated_llama(policy):
    cfg = policy.model.config
    assert (cfg.num_hidden_layers, cfg.hidden_size, cfg.intermediate_size, cfg.num_attention_heads) == (2, 128, 512, 4)
    assert cfg.tie_word_embeddings and cfg.max_position_embeddings == 256
    assert policy.model.config._attn_implementation == "sdpa"
    assert 450_000 < policy.num_parameters() < 600_000
    assert tiny_config(100, num_hidden_layers=4).num_hidden_layers == 4


def test_new_tiny_policy_is_deterministic_and_leaves_global_rng_alone():
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a, b, c = new_tiny_policy(7), new_tiny_policy(7), new_tiny_policy(8)
    assert torch.rand(1) == before
    wa, wb, wc = (p.model.model.embed_tokens.weight for p in (a, b, c))
    assert torch.equal(wa, wb) and not torch.equal(wa, wc)


def test_save_load_gives_identical_logits_and_tokens(policy, tmp_path):
    policy.save(tmp_path)
    assert (tmp_path / "model.safetensors").is_file() and not list(tmp_path.glob("*.bin"))
    loaded = Policy.load(tmp_path)
    assert not loaded.model.training and loaded.model.dtype == torch.float32
    text = "0321+0654= some code(x)\n"
    assert loaded.encode_prompt(text) == policy.encode_prompt(text)
    ids = torch.tensor([policy.encode_prompt(text)])
    with torch.no_grad():
        assert torch.equal(loaded.model(ids).logits, policy.model(ids).logits)


def _load_error(path) -> str:
    with pytest.raises(UserError) as info:
        Policy.load(path)
    msg = str(info.value)
    assert "\n" not in msg and str(path) in msg
    return msg


def test_load_errors_name_the_path_and_problem(policy, tmp_path):
    assert "no such directory" in _load_error(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    assert "no config.json" in _load_error(tmp_path / "empty")

    ckpt = tmp_path / "ckpt"
    policy.save(ckpt)
    weights = ckpt / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    assert "weights" in _load_error(ckpt)
    weights.write_bytes(data[:5])
    assert "weights" in _load_error(ckpt)
    weights.unlink()
    assert "weights" in _load_error(ckpt)

    state = {k: v for k, v in load_safetensors(data).items() if k != "model.norm.weight"}
    save_file(state, str(weights), metadata={"format": "pt"})
    assert "model.norm.weight" in _load_error(ckpt)


def test_copy_is_frozen_and_independent(policy):
    ref = policy.copy()
    assert not ref.model.training
    assert not any(p.requires_grad for p in ref.model.parameters())
    assert all(p.requires_grad for p in policy.model.parameters())
    with torch.no_grad():
        ref.model.model.norm.weight.add_(1.0)
    assert not torch.equal(ref.model.model.norm.weight, policy.model.model.norm.weight)


def test_encode_and_decode(policy):
    prompt = policy.encode_prompt("12+3=")
    assert prompt[0] == policy.tokenizer.bos_token_id and len(prompt) == 6
    completion = policy.encode_completion("51 0")
    assert completion[-1] == policy.eos_id and len(completion) == 5
    assert policy.encode_completion("51 0", eos=False) == completion[:-1]
    assert policy.decode(completion + policy.encode_completion("junk")) == "51 0"
    assert policy.pad_id == policy.tokenizer.pad_token_id != policy.eos_id


def test_token_logprobs_are_padding_invariant_and_differentiable(policy):
    prompts = [policy.encode_prompt(t) for t in ["1+2=", "0321+0654=", "x"]]
    completions = [policy.encode_completion(t) for t in ["3", "975", ""]]
    model = policy.model.train()
    try:
        logp, mask = policy.token_logprobs(prompts, completions, temperature=0.5)
        assert logp.shape == mask.shape == (3, 4)
        assert mask.tolist() == [[1, 1, 0, 0], [1, 1, 1, 1], [1, 0, 0, 0]]
        assert (logp[mask == 1] < 0).all() and (logp[mask == 0] == 0).all()
        for b in range(3):  # each row alone: no padding at all
            alone, _ = policy.token_logprobs([prompts[b]], [completions[b]], temperature=0.5)
            assert torch.allclose(alone[0], logp[b, : len(completions[b])], atol=1e-5)
        loss = -(logp * mask).sum()
        loss.backward()
        grads = [p.grad for p in model.parameters()]
        assert all(g is not None and torch.isfinite(g).all() for g in grads)
        assert any(g.abs().sum() > 0 for g in grads)
    finally:
        model.zero_grad(set_to_none=True)
        model.eval()


def test_model_position_limit(policy):
    with pytest.raises(UserError, match="max_position_embeddings=256"):
        sample(policy, ["x" * 260], n=1, max_new_tokens=10)
    out = sample(policy, ["x" * 250, "y"], n=2, max_new_tokens=10, batch_size=1,
                        seed=0)  # stops at the limit instead
    assert all(len(c.token_ids) <= 256 - 251 for c in out[0]) and any(len(c.token_ids) > 5 for c in out[1])
    with pytest.raises(UserError, match="max_position_embeddings=256"):
        policy.token_logprobs([policy.encode_prompt("x" * 200)], [policy.encode_completion("y" * 100)])
