"""The policy: a transformers causal LM + tokenizer that samples with log-probs and trains.

`Policy.load(dir)` reads any local Hugging Face checkpoint; `new_tiny_policy(seed)` makes
the built-in tiny Llama with a character tokenizer. Both take the same code path.
"""
from sharpen.policy.policy import Policy
from sharpen.policy.tiny import new_tiny_policy, tiny_config
from sharpen.policy.tokenizer import build_char_tokenizer

__all__ = ["Policy", "new_tiny_policy", "tiny_config", "build_char_tokenizer"]
