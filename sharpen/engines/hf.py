"""`engine: hf`, the built-in sampler on a plain transformers copy of the policy's weights.

The engine keeps its own model rather than sampling the trainable one: LoRA adapters are
merged into it (no adapter matmuls per decode step), it holds the weights in the compute
dtype (bf16 where the policy runs bf16, instead of autocasting fp32 weights every step),
and it goes stale exactly like a remote engine would when a sync is skipped, so the
loop's sync check guards this engine too.
"""
from __future__ import annotations

from typing import Callable, Sequence


from sharpen.engines.sampler import sample_ids
from sharpen.errors import UserError, is_out_of_memory
from sharpen.types import Completion, PolicyModel, SamplingParams


class HFEngine:
    """Samples with `sharpen.engines.sampler` (shared-prefix KV cache, finished rows dropped)."""

    name = "hf"
    syncs_weights = True

    def __init__(self, policy: PolicyModel, batch_size: int = 64) -> None:
        self.policy = policy
        self.batch_size = batch_size
        self.model = None
        self.synced_version: int | None = None

    def sync(self, policy: PolicyModel) -> None:
        """Copy the policy's merged weights into the engine's model (built on first use)."""
        if self.model is not None and policy is self.policy and self.synced_version == policy.version:
            return
        self.policy = policy
        if self.model is None:
            self.model = policy.plain_model(dtype=policy.dtype)
        else:
            self.model.load_state_dict(policy.merged_state_dict())
        self.synced_version = policy.version

    def generate(self, prompts: Sequence[str], params: SamplingParams, seeds: Sequence[int],
                 progress: Callable[[int], None] | None = None) -> list[list[Completion]]:
        if self.model is None:
            self.sync(self.policy)
        policy = self.policy
        prompt_ids = policy.encode_prompts(list(prompts))
        if prompt_ids:  # a completion may stop early at the position limit, a prompt must fit with room for one token
            policy.check_length(max(map(len, prompt_ids)) + 1, "the longest prompt")
        try:
            rollouts = sample_ids(self.model, prompt_ids, params.n, temperature=params.temperature, top_p=params.top_p,
                                  max_new_tokens=params.max_new_tokens, stop_ids=policy.stop_ids, pad_id=policy.pad_id,
                                  seeds=seeds, batch_size=self.batch_size, progress=progress,
                                  max_positions=policy.max_positions())
        except RuntimeError as err:
            if is_out_of_memory(err):
                raise UserError(f"engine hf: out of memory sampling {self.batch_size} prompts x n={params.n} at a time; "
                                "lower sample.batch_size") from None
            raise
        texts = iter(policy.decode_many([r.token_ids for group in rollouts for r in group]))
        return [[Completion(next(texts), r.token_ids, r.logprobs, r.finished) for r in group] for group in rollouts]

    def sleep(self) -> None:
        """Nothing to free: the engine's copy is the size of the model, and the next sync refills it."""

    def close(self) -> None:
        self.model = None


def sample(policy: PolicyModel, prompts: Sequence[str], n: int = 1, temperature: float = 1.0, top_p: float = 1.0,
           max_new_tokens: int = 32, seed: int = 0, batch_size: int = 64,
           progress: Callable[[int], None] | None = None) -> list[list[Completion]]:
    """One-off sampling on a fresh `HFEngine` (tests, benchmarks, notebooks); prompt i is
    seeded from (seed, i)."""
    from sharpen.seeds import derive_seed

    engine = HFEngine(policy, batch_size=batch_size)
    params = SamplingParams(n=n, temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens)
    return engine.generate(prompts, params, [derive_seed(seed, i) for i in range(len(prompts))], progress=progress)


def greedy(policy: PolicyModel, prompts: Sequence[str], max_new_tokens: int = 32, batch_size: int = 128) -> list[str]:
    """Argmax decoding of each prompt through the same sampler."""
    return [g[0].text for g in sample(policy, prompts, temperature=0.0, max_new_tokens=max_new_tokens,
                                      batch_size=batch_size)]
