"""Is a majority-vote pseudo-label worth training on? The pre-flight check for TTRL-style recipes.

Samples N answers per train prompt from a checkpoint (engine hf, seeded per prompt as the
loop seeds them) and prints, per agreement level (the share of the N votes that went to the
majority answer), how many prompts reach it and how often their majority is right. A vote
threshold (`feedback.min_agreement`) trades coverage for label precision; the label
accuracy at each threshold bounds what a label-free round can teach.

    python benchmarks/vote_agreement.py --checkpoint DIR [--n 16] [--prompts 1000] [--temperature 0.8 0.5]
                                        [--equivalents 1 4 16 32]

The second table is Co-Reward's label: the plurality of K equivalent questions' greedy
answers (`task.paraphrases`), against the model's own greedy answer on the same prompts.
The third is Self-Harmony's (`sharpen/feedback/harmony.py`): the answer with the highest
harmonic mean of its vote shares over the question and K reframings, each sampled
`--harmony-votes` times, next to the pooled plurality of the same samples.

    [--harmony-views 1 8 16] [--harmony-votes 16] [--harmony-temperature 0.8 0.5] [--smoothing 0 0.5]
"""
from __future__ import annotations

import argparse
from collections import Counter

import torch

from sharpen.engines.hf import HFEngine
from sharpen.feedback.harmony import harmonic_label
from sharpen.monitor.metrics import majority_vote
from sharpen.policy import Policy
from sharpen.seeds import derive_seed
from sharpen.tasks import make_task
from sharpen.types import SamplingParams

THRESHOLDS = (0.0, 0.25, 0.375, 0.5, 0.625, 0.75)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--n", type=int, default=16)
    ap.add_argument("--prompts", type=int, default=1000)
    ap.add_argument("--temperature", type=float, nargs="+", default=[0.8])
    ap.add_argument("--max-new-tokens", type=int, default=24)
    ap.add_argument("--equivalents", type=int, nargs="*", default=[1, 4, 16, 32])
    ap.add_argument("--harmony-views", type=int, nargs="*", default=[1, 8, 16])
    ap.add_argument("--harmony-votes", type=int, default=16)
    ap.add_argument("--harmony-temperature", type=float, nargs="+", default=[0.8, 0.5])
    ap.add_argument("--smoothing", type=float, nargs="+", default=[0.0, 0.5])
    args = ap.parse_args()
    torch.set_num_threads(1)
    task = make_task({"name": "arithmetic"})
    policy = Policy.load(args.checkpoint)
    engine = HFEngine(policy, batch_size=64)
    engine.sync(policy)
    prompts = task.prompts("train", args.prompts, round=1)
    greedy = engine.generate([p.text for p in prompts], SamplingParams(n=1, temperature=0.0, max_new_tokens=args.max_new_tokens),
                             [0] * len(prompts))
    greedy_right = [task.score(p, task.extract(g[0].text)) >= 1 for p, g in zip(prompts, greedy)]
    print(f"{args.checkpoint}: {len(prompts)} train prompts, greedy {100 * sum(greedy_right) / len(prompts):.1f}%\n")
    print("| T | min agreement | prompts labelled | label accuracy | greedy accuracy on them | prompts and label accuracy by op |")
    print("|---|---|---|---|---|---|")
    for t in args.temperature:
        params = SamplingParams(n=args.n, temperature=t, max_new_tokens=args.max_new_tokens)
        groups = engine.generate([p.text for p in prompts], params, [derive_seed(0, "sample", 1, p.id) for p in prompts])
        rows = []
        for p, g, gr in zip(prompts, groups, greedy_right):
            answers = [task.extract(c.text) for c in g]
            label = majority_vote(answers)
            share = Counter(answers)[label] / len(answers) if label is not None else 0.0
            rows.append((share, label is not None and task.score(p, label) >= 1, gr, p.meta.get("op", "")))
        for th in THRESHOLDS:
            kept = [r for r in rows if r[0] > th and r[0] > 0]
            if not kept:
                continue
            by_op = {op: [r for r in kept if r[3] == op] for op in sorted({r[3] for r in rows})}
            mix = " / ".join(f"{op} {len(k)}: {100 * sum(r[1] for r in k) / len(k):.0f}%" if k else f"{op} 0" for op, k in by_op.items())
            print(f"| {t} | > {th} | {len(kept)} ({100 * len(kept) / len(rows):.0f}%) | {100 * sum(r[1] for r in kept) / len(kept):.1f}% "
                  f"| {100 * sum(r[2] for r in kept) / len(kept):.1f}% | {mix} |")
    family_vote(task, engine, prompts, greedy_right, args.equivalents, args.max_new_tokens)
    if args.harmony_views:
        harmony_vote(task, engine, prompts, greedy_right, args)
    engine.close()


def family_vote(task, engine, prompts, greedy_right, sizes, max_new_tokens) -> None:
    """Co-Reward's cross-question vote with K equivalent questions (`task.paraphrases`), one greedy
    answer each: errors on different digit patterns are closer to independent than one
    question's samples, so the plurality can beat the model's own greedy answer."""
    rephrased = [(p, g) for p, g in zip(prompts, greedy_right) if task.paraphrases(p, 1)]
    if not rephrased:
        return
    print(f"\n{len(rephrased)} prompts with equivalent questions; their greedy accuracy "
          f"{100 * sum(g for _, g in rephrased) / len(rephrased):.1f}%\n")
    print("| K equivalents (greedy) | plurality right | > 0.3 of votes: prompts, right | > 0.5 of votes: prompts, right |")
    print("|---|---|---|---|")
    for k in sizes:
        fam = [task.paraphrases(p, k) for p, _ in rephrased]
        flat = [q for f in fam for q in f]
        answers = engine.generate([q.text for q in flat], SamplingParams(n=1, temperature=0.0, max_new_tokens=max_new_tokens),
                                  [0] * len(flat))
        it = iter(task.extract(a[0].text) for a in answers)
        rows = []
        for (p, _), f in zip(rephrased, fam):
            votes = [next(it) for _ in f]
            label = majority_vote(votes)
            share = Counter(votes)[label] / len(votes) if label is not None else 0.0
            rows.append((share, label is not None and task.score(p, label) >= 1))
        cells = []
        for th in (0.3, 0.5):
            kept = [ok for share, ok in rows if share > th]
            cells.append(f"{len(kept)}, {100 * sum(kept) / max(len(kept), 1):.1f}%")
        print(f"| {k} | {100 * sum(ok for _, ok in rows) / len(rows):.1f}% | {cells[0]} | {cells[1]} |")


def harmony_vote(task, engine, prompts, greedy_right, args) -> None:
    """Self-Harmony's label with K reframings: every view (the question itself included) is
    sampled `--harmony-votes` times at each temperature, seeded per (view, purpose)."""
    rephrased = [(p, g) for p, g in zip(prompts, greedy_right) if task.paraphrases(p, 1)]
    if not rephrased:
        return
    n, k_max = args.harmony_votes, max(args.harmony_views)
    fams = [[p] + task.paraphrases(p, k_max) for p, _ in rephrased]
    flat = [q for f in fams for q in f]
    print(f"\nSelf-Harmony on the same {len(rephrased)} prompts ({n} votes a view; the question is view 1)\n")
    print("| T | reframings | views | " + " | ".join(f"harmonic mean, smoothing {s}" for s in args.smoothing)
          + " | pooled plurality |")
    print("|---|---|---|" + "---|" * (len(args.smoothing) + 1))
    for t in args.harmony_temperature:
        params = SamplingParams(n=n, temperature=t, max_new_tokens=args.max_new_tokens)
        groups = engine.generate([q.text for q in flat], params, [derive_seed(0, "harmony", q.id) for q in flat])
        it = iter([task.extract(c.text) for c in g] for g in groups)
        views = [[next(it) for _ in f] for f in fams]
        for k in args.harmony_views:
            cells = []
            for sm in args.smoothing:
                right = [task.score(p, lab) >= 1 for (p, _), v in zip(rephrased, views)
                         if (lab := harmonic_label(v[: k + 1], sm)[0]) is not None]
                cells.append(f"{100 * sum(right) / len(rephrased):.1f}%")
            pooled = [(lab := majority_vote([a for view in v[: k + 1] for a in view])) is not None and task.score(p, lab) >= 1
                      for (p, _), v in zip(rephrased, views)]
            print(f"| {t} | {k} | {k + 1} | " + " | ".join(cells)
                  + f" | {100 * sum(pooled) / len(rephrased):.1f}% |")


if __name__ == "__main__":
    main()
