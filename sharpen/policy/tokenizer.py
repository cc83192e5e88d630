"""The built-in tiny model's character tokenizer: one token per character.

Built with the `tokenizers` library and wrapped in `PreTrainedTokenizerFast`, so it saves
and loads like any Hugging Face tokenizer (`save_pretrained` / `AutoTokenizer`) and the
tiny model goes through the same code path as a real checkpoint. Characters keep digit
positions aligned, which is what lets a ~0.5M-parameter model learn reversed-digit
arithmetic (benchmarks/seed_calibration.py).
"""
from __future__ import annotations

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors
from transformers import PreTrainedTokenizerFast

SPECIAL_TOKENS: tuple[str, ...] = ("<pad>", "<bos>", "<eos>", "<unk>")
# Every printable ASCII character plus newline: arithmetic and Python expressions both fit.
CHARACTERS: tuple[str, ...] = ("\n",) + tuple(chr(c) for c in range(32, 127))


def build_char_tokenizer() -> PreTrainedTokenizerFast:
    """A character-level tokenizer that adds `<bos>` to every encoded text.

    `Split` on any single character (`[\\s\\S]`, so spaces and newlines are tokens, not
    dropped) feeds a WordLevel vocabulary; the `Fuse` decoder joins tokens without the
    spaces WordLevel would insert. Special-token strings in user text (say a literal
    "<eos>" in code) are split into characters, so decode(encode(s)) == s.
    """
    vocab = {tok: i for i, tok in enumerate(SPECIAL_TOKENS + CHARACTERS)}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    tok.decoder = decoders.Fuse()
    tok.post_processor = processors.TemplateProcessing(
        single="<bos> $A", pair="<bos> $A $B", special_tokens=[("<bos>", vocab["<bos>"])]
    )
    tok.add_special_tokens(list(SPECIAL_TOKENS))
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="<pad>",
        bos_token="<bos>",
        eos_token="<eos>",
        unk_token="<unk>",
        clean_up_tokenization_spaces=False,
        split_special_tokens=True,
    )
