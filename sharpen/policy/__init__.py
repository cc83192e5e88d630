"""The policy: a transformers causal LM (optionally with LoRA) + tokenizer that gives log-probs and trains.

`Policy.load(dir)` reads any local Hugging Face checkpoint (or LoRA round checkpoint); `new_tiny_policy(seed)` makes
the built-in tiny Llama with a character tokenizer. Both take the same code path; engines
(`sharpen.engines`) do the sampling.
"""
from sharpen.policy.policy import Policy
from sharpen.policy.tiny import new_tiny_policy, tiny_config
from sharpen.policy.tokenizer import build_char_tokenizer

__all__ = ["Policy", "new_tiny_policy", "tiny_config", "build_char_tokenizer"]
