"""Any local Hugging Face causal-LM directory is a policy: a GPT-2 with a byte-level
BPE tokenizer (another architecture and tokenizer than the tiny Llama) goes through
`sharpen eval` and a 1-round run."""
from __future__ import annotations

import json
import sys

import pytest
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

from sharpen.cli import main


@pytest.fixture(scope="module")
def gpt2_dir(tmp_path_factory):
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    corpus = [f"{a:04d}+{b:04d}={a + b:05d}" for a in range(0, 9999, 97) for b in range(0, 9999, 991)]
    tok.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=300, special_tokens=["<|endoftext|>"],
                                                        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    hf_tok = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>", bos_token="<|endoftext|>")
    model = GPT2LMHeadModel(GPT2Config(vocab_size=len(hf_tok), n_positions=128, n_embd=32, n_layer=1, n_head=2,
                                       eos_token_id=hf_tok.eos_token_id, bos_token_id=hf_tok.eos_token_id))
    path = tmp_path_factory.mktemp("gpt2") / "ckpt"
    model.save_pretrained(path)
    hf_tok.save_pretrained(path)
    return path


def _cli(monkeypatch, capsys, *args):
    monkeypatch.setattr(sys, "argv", ["sharpen", *map(str, args)])
    try:
        main()
        code = 0
    except SystemExit as e:
        code = e.code
    return code, *capsys.readouterr()


def test_eval_on_a_foreign_checkpoint(gpt2_dir, monkeypatch, capsys):
    from tests.conftest import table_rows

    code, out, err = _cli(monkeypatch, capsys, "eval", gpt2_dir, "--prompts", "8", "--k", "2")
    assert code == 0, err
    rows = table_rows(out)
    assert [r[0] for r in rows] == ["eval", "holdout"] and all(r[-1] == "8" for r in rows), out
    assert all(r[1].endswith("%") and 0 <= float(r[1][:-1]) <= 100 for r in rows), out


def test_one_round_run_on_a_foreign_checkpoint(gpt2_dir, tmp_path, monkeypatch, capsys):
    code, out, err = _cli(monkeypatch, capsys, "run", "star", f"policy.path={gpt2_dir}", "rounds=1", "sample.n=2",
                          "sample.prompts_per_round=8", "eval.n=8", "eval.k=2", "build.threshold=0.0",
                          "sample.max_new_tokens=8", "eval.max_new_tokens=8", "--out", tmp_path / "run")
    assert code == 0, err
    m = json.loads((tmp_path / "run/rounds/1/metrics.json").read_text())
    assert m["train"]["samples"] == 16 and m["train"]["kept"] > 0 and m["train"]["steps"] > 0
    assert (tmp_path / "run/rounds/1/checkpoint/tokenizer.json").exists()
