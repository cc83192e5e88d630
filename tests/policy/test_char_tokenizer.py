"""The character tokenizer: every printable character (spaces too) survives encode/decode and save/load."""
from __future__ import annotations

import string

from transformers import AutoTokenizer

from sharpen.policy.tokenizer import CHARACTERS, SPECIAL_TOKENS, build_char_tokenizer

TEXTS = [
    "0321+0654=",
    "  leading and trailing  ",
    "def f(a, b):\n    return a  + b\n",
    string.printable.replace("\t", "").replace("\r", "").replace("\x0b", "").replace("\x0c", ""),
    "literal <eos> and <pad> are just characters",
    "",
]


def test_vocabulary_is_specials_then_printable_ascii_and_newline():
    tok = build_char_tokenizer()
    assert len(tok) == len(SPECIAL_TOKENS) + 95 + 1 == 100
    assert [tok.pad_token_id, tok.bos_token_id, tok.eos_token_id, tok.unk_token_id] == [0, 1, 2, 3]
    assert set(CHARACTERS) == {chr(c) for c in range(32, 127)} | {"\n"}


def test_one_token_per_character_with_bos():
    tok = build_char_tokenizer()
    for text in TEXTS:
        ids = tok(text)["input_ids"]
        assert ids[0] == tok.bos_token_id
        assert len(ids) == len(text) + 1
        assert tok(text, add_special_tokens=False)["input_ids"] == ids[1:]
        assert tok.decode(ids, skip_special_tokens=True) == text


def test_round_trip_through_save_pretrained_and_auto_tokenizer(tmp_path):
    tok = build_char_tokenizer()
    tok.save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    assert len(loaded) == len(tok)
    assert loaded.eos_token_id == tok.eos_token_id and loaded.pad_token_id == tok.pad_token_id
    for text in TEXTS:
        ids = tok(text)["input_ids"]
        assert loaded(text)["input_ids"] == ids
        assert loaded.decode(ids, skip_special_tokens=True) == text
