"""Any local HF checkpoint takes the same path: a tiny GPT-2 (absolute positions, byte-level
BPE, no pad token) saved to disk loads through Policy.load, samples and scores consistently."""
from __future__ import annotations

import pytest
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

from sharpen.policy import Policy
from sharpen.engines.hf import greedy, sample

EOS = "<|endoftext|>"
CORPUS = ["12+34=46", "the cat sat on the mat", "def add(a, b): return a + b", "hello world", "7*8=56"]
PROMPTS = ["12+", "the cat sat on", "def add(a, b):", "h"]


def _byte_level_tokenizer() -> PreTrainedTokenizerFast:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=[EOS],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(CORPUS * 4, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS, bos_token=EOS, clean_up_tokenization_spaces=False)


@pytest.fixture(scope="module")
def gpt2_dir(tmp_path_factory):
    """A GPT-2 trained a few steps on the corpus (through Policy.token_logprobs), so it stops early."""
    tokenizer = _byte_level_tokenizer()
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=len(tokenizer), n_positions=64, n_embd=32, n_layer=2, n_head=2,
                                       bos_token_id=tokenizer.eos_token_id, eos_token_id=tokenizer.eos_token_id))
    policy = Policy(model, tokenizer)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(40):
        p_ids = [policy.encode_prompt(t[:3]) for t in CORPUS]
        c_ids = [policy.encode_completion(t[3:]) for t in CORPUS]
        logp, mask = policy.token_logprobs(p_ids, c_ids)
        loss = -(logp * mask).sum() / mask.sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    path = tmp_path_factory.mktemp("gpt2")
    policy.save(path)
    return path, policy


def test_gpt2_loads_with_eos_as_pad(gpt2_dir):
    path, original = gpt2_dir
    policy = Policy.load(path)
    assert isinstance(policy.model, GPT2LMHeadModel)
    assert policy.tokenizer.pad_token_id is None and policy.pad_id == policy.eos_id
    ids = torch.tensor([policy.encode_prompt("the cat")])
    with torch.no_grad():
        assert torch.equal(policy.model(ids).logits, original.model(ids).logits)


def test_gpt2_sample_logprobs_match_token_logprobs(gpt2_dir):
    policy = Policy.load(gpt2_dir[0])
    lengths = {len(policy.encode_prompt(p)) for p in PROMPTS}
    assert len(lengths) > 1, "prompts must need left padding"
    groups = sample(policy, PROMPTS, n=3, temperature=0.9, max_new_tokens=20,
                           seed=0)
    flat = [(PROMPTS[i], c) for i, grp in enumerate(groups) for c in grp]
    assert any(c.finished for _, c in flat)
    logp, mask = policy.token_logprobs([policy.encode_prompt(p) for p, _ in flat], [c.token_ids for _, c in flat],
                                       temperature=0.9)
    for r, (_, c) in enumerate(flat):
        assert mask[r].sum() == len(c.token_ids)
        assert torch.allclose(logp[r, : len(c.logprobs)], torch.tensor(c.logprobs), atol=1e-5)


def test_gpt2_greedy_equals_argmax_of_full_forward(gpt2_dir):
    policy = Policy.load(gpt2_dir[0])
    texts = greedy(policy, PROMPTS, max_new_tokens=12)
    for prompt, text in zip(PROMPTS, texts):
        ids = policy.encode_prompt(prompt)
        out: list[int] = []
        with torch.no_grad():
            while len(out) < 12 and (not out or out[-1] != policy.eos_id):
                out.append(int(policy.model(torch.tensor([ids + out])).logits[0, -1].argmax()))
        assert text == policy.decode(out)
