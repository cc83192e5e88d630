"""Inference-time selection: sample N completions per prompt, keep one answer.

Methods: `greedy` (the greedy decode, no selection; the baseline every method must beat),
`vote` (self-consistency: the majority answer), `certainty` (best-of-N by self-certainty,
Kang et al. 2025), `borda` (their rank-weighted vote on self-certainty), `likelihood`
(best-of-N by mean per-token log-prob), `judge` (best-of-N by the model's own P(yes) as a
judge) and `verifier` (the ground truth picks: pass@N, the ceiling no selector can pass).

Every scorer runs once on all N samples of a prompt; the accuracy at each N' <= N is then
read from the first N' samples, so the curves are nested (the pool at N'=4 contains the
pool at N'=2) and a whole scaling curve costs one sampling pass. Every tie goes to the
earlier sample, so a selection is a deterministic function of the samples and scores.
"""
from __future__ import annotations

import copy
import io
import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from sharpen.errors import UserError
from sharpen.feedback.base import validate_feedback
from sharpen.feedback.score import run_feedback
from sharpen.feedback.verifier import verify
from sharpen.monitor.metrics import majority_vote
from sharpen.registry import FEEDBACK
from sharpen.types import Context, Prompt, Sample, SamplingParams

METHODS: tuple[str, ...] = ("greedy", "vote", "certainty", "borda", "likelihood", "judge", "rm", "rm_vote", "prm",
                             "verifier")
LEARNED = ("rm", "rm_vote", "prm")  # need --rm DIR: sharpen.reward_models.selection
# the scaling default: every method but the judge, which costs a forward per sample and a judge format
DEFAULT_SCALING: tuple[str, ...] = ("greedy", "vote", "certainty", "borda", "likelihood", "verifier")
# the feedback each scored method ranks by (certainty and borda share one self-certainty pass)
SCORERS: dict[str, dict[str, Any]] = {
    "certainty": {"kind": "self_certainty"},
    "borda": {"kind": "self_certainty"},
    "likelihood": {"kind": "likelihood", "normalize": True},  # mean per-token: no bias toward short samples
    "judge": {"kind": "judge"},
}
BORDA_P = 0.5  # Kang et al.'s code default; p=0 is plain majority vote


@dataclass
class Candidate:
    """One sample as selection sees it: its extracted answer, whether it is right, and the
    value of every scorer run on it (by feedback kind, plus "verifier": the task's score)."""

    answer: str | None
    correct: bool
    scores: dict[str, float]


@dataclass
class Pool:
    """One prompt's N candidates (in sample order) and whether its greedy decode is right."""

    candidates: list[Candidate]
    greedy_correct: bool | None = None


def parse_methods(items: Sequence[str] | str) -> list[str]:
    """`["vote,verifier", "greedy"]` -> `["vote", "verifier", "greedy"]` (order kept, no repeats)."""
    parts = [items] if isinstance(items, str) else list(items)
    methods = list(dict.fromkeys(m.strip() for item in parts for m in item.split(",") if m.strip()))
    if not methods:
        raise UserError(f"--select: no method given; one or more of {', '.join(METHODS)}")
    for m in methods:
        if m not in METHODS:
            raise UserError(f"--select: unknown selection method {m!r}; one of {', '.join(METHODS)}")
    return methods


def prefix_sizes(n: int) -> list[int]:
    """The N' the curves are read at: powers of two up to n, and n itself."""
    if n < 1:
        raise UserError(f"N={n} samples per prompt: selection needs N >= 1")
    sizes = [1 << i for i in range(n.bit_length()) if 1 << i <= n]
    return sizes if sizes[-1] == n else [*sizes, n]


def check_methods(methods: Sequence[str], task: Any, rm_dirs: Sequence[str] = ()) -> None:
    """Fail before any sampling when a method cannot run: judge selection needs the judge
    feedback registered and a task with a judge format (`judge_prompt`, how a model is asked
    whether an answer is right; every built-in task has one, a hand-made Task may not);
    rm, rm_vote and prm need reward models of their kind (`--rm DIR`)."""
    if set(LEARNED) & set(methods) or rm_dirs:
        from sharpen.reward_models.selection import split_dirs

        if not set(LEARNED) & set(methods):
            raise UserError("--rm: reward models are used only by --select rm, rm_vote or prm; add one of them")
        split_dirs(methods, rm_dirs)
    if "judge" not in methods:
        return
    if "judge" not in FEEDBACK.names():
        raise UserError("--select judge: no judge feedback is registered in this install; drop judge from --select")
    _feedback_config("judge")
    if not callable(getattr(task, "judge_prompt", None)):
        raise UserError(f"--select judge: task {getattr(task, 'name', task)!r} has no judge format (a judge_prompt method); "
                        "drop judge from --select or give the task one")


def _feedback_config(method: str) -> Any:
    try:
        return validate_feedback(dict(SCORERS[method]), "select")
    except ValueError as e:
        raise UserError(f"--select {method}: {e}") from None


# ---- picking one answer from a pool --------------------------------------------------------

def argmax(values: Sequence[float]) -> int:
    """Index of the largest value; the first one on a tie (Python's max keeps the first)."""
    return max(range(len(values)), key=values.__getitem__)


def vote_pick(cands: Sequence[Candidate]) -> int | None:
    """The first sample carrying the majority answer (`majority_vote`: ties to the answer seen
    first); None when no sample has an answer."""
    winner = majority_vote([c.answer for c in cands])
    return None if winner is None else next(i for i, c in enumerate(cands) if c.answer == winner)


def borda_pick(cands: Sequence[Candidate], key: str = "self_certainty", p: float = BORDA_P) -> int | None:
    """Borda vote (Kang et al. 2025): rank samples by `key` (rank 1 = highest; ties keep sample
    order), give rank r the weight (N - r + 1)^p, sum the weights per distinct answer, and
    return the first sample carrying the top answer (ties: the answer seen first)."""
    n = len(cands)
    order = sorted(range(n), key=lambda i: -cands[i].scores[key])  # stable: equal scores keep sample order
    total: dict[str, float] = defaultdict(float)
    for rank, i in enumerate(order, start=1):
        if cands[i].answer is not None:
            total[cands[i].answer] += (n - rank + 1) ** p
    if not total:
        return None
    best = max(total.values())
    return next(i for i, c in enumerate(cands) if c.answer is not None and total[c.answer] == best)


def weighted_vote_pick(cands: Sequence[Candidate], key: str = "rm") -> int | None:
    """A vote in which each sample weighs sigmoid(its score): the first sample of the answer
    with the largest total (ties: the answer seen first)."""
    total: dict[str, float] = defaultdict(float)
    for c in cands:
        if c.answer is not None:
            total[c.answer] += 1.0 / (1.0 + math.exp(-c.scores[key]))
    if not total:
        return None
    best = max(total.values())
    return next(i for i, c in enumerate(cands) if c.answer is not None and total[c.answer] == best)


def pick(method: str, cands: Sequence[Candidate]) -> int | None:
    """Index of the selected sample in `cands` (None: nothing to select, counted wrong)."""
    if method == "vote":
        return vote_pick(cands)
    if method == "rm_vote":
        return weighted_vote_pick(cands)
    if method == "borda":
        return borda_pick(cands)
    key = {"certainty": "self_certainty", "likelihood": "likelihood", "judge": "judge", "verifier": "verifier",
           "rm": "rm", "prm": "prm"}[method]
    return argmax([c.scores[key] for c in cands])


def accuracy(pools: Sequence[Pool], method: str, n: int) -> float:
    """Fraction of prompts whose selected answer (from its first `n` samples) is right."""
    if method == "greedy":  # the greedy decode does not depend on n
        return sum(bool(p.greedy_correct) for p in pools) / len(pools)
    hits = 0
    for p in pools:
        i = pick(method, p.candidates[:n])
        hits += i is not None and p.candidates[i].correct
    return hits / len(pools)


def curves(pools: Sequence[Pool], methods: Sequence[str], sizes: Sequence[int]) -> dict[str, dict[int, float]]:
    """{method: {N': accuracy}} from the same pools."""
    return {m: {k: accuracy(pools, m, k) for k in sizes} for m in methods}


# ---- sampling and scoring ------------------------------------------------------------------

def build_pools(ctx: Context, prompts: list[Prompt], methods: Sequence[str], *, n: int, temperature: float,
                max_new_tokens: int, seeds: Sequence[int], label: str = "", rm_dirs: Sequence[str] = ()) -> list[Pool]:
    """Greedy-decode and sample `n` completions per prompt with `ctx.engine`, then run every
    scorer the methods need once over all samples (`ctx.progress` draws the bars)."""
    engine, task = ctx.engine, ctx.task
    assert engine is not None, "selection samples through ctx.engine"
    texts = [p.text for p in prompts]
    greedy: list[bool | None] = [None] * len(prompts)
    if "greedy" in methods:
        with ctx.progress(f"greedy {label}".strip(), len(prompts)) as advance:
            groups = engine.generate(texts, SamplingParams(n=1, temperature=0.0, max_new_tokens=max_new_tokens), seeds,
                                     progress=advance)
        greedy = [s >= 1.0 for s in task.score_batch(prompts, [g[0].text for g in groups])]
    if not any(m != "greedy" for m in methods):
        return [Pool([], g) for g in greedy]
    with ctx.progress(f"sample {label}".strip(), len(prompts)) as advance:
        groups = engine.generate(texts, SamplingParams(n=n, temperature=temperature, max_new_tokens=max_new_tokens),
                                 seeds, progress=advance)
    samples = [Sample(p, c, i) for p, g in zip(prompts, groups) for i, c in enumerate(g)]
    verified = verify(samples, task)
    cands = [Candidate(s.answer, bool(s.correct), {"verifier": s.reward}) for s in verified]
    for kind, cfg in _scorer_configs(methods).items():
        for c, v in zip(cands, score_samples(samples, cfg, ctx, f"{kind} {label}".strip(), group=n)):
            c.scores[kind] = v
    if set(LEARNED) & set(methods):
        from sharpen.reward_models.selection import learned_scores

        for key, values in learned_scores(samples, methods, rm_dirs).items():
            for c, v in zip(cands, values):
                c.scores[key] = v
    return [Pool(cands[i * n:(i + 1) * n], greedy[i]) for i in range(len(prompts))]


def _scorer_configs(methods: Sequence[str]) -> dict[str, Any]:
    """One validated feedback config per scorer kind the methods need."""
    out: dict[str, Any] = {}
    for m in methods:
        if m in SCORERS and SCORERS[m]["kind"] not in out:
            out[SCORERS[m]["kind"]] = _feedback_config(m)
    return out


def score_samples(samples: list[Sample], cfg: Any, ctx: Context, label: str, group: int,
                  chunk_samples: int = 256) -> list[float]:
    """The feedback's reward for every sample, scored in chunks of whole prompts (so a bar
    can move, and a scorer that looks at a prompt's group sees all of it)."""
    step = max(1, chunk_samples // group) * group
    out: list[float] = []
    with ctx.progress(label, len(samples)) as advance:
        for start in range(0, len(samples), step):
            chunk = copy.deepcopy(samples[start:start + step])  # a scorer may annotate what it is given
            out += [s.reward for s in run_feedback(chunk, cfg, ctx).scored]
            advance(len(chunk))
    return out


# ---- scaling outputs -----------------------------------------------------------------------

def scaling_rows(curve: dict[str, dict[int, float]], split: str, prompts: int) -> list[dict[str, Any]]:
    """One CSV row per (method, N)."""
    return [{"method": m, "n": k, "accuracy": round(acc, 6), "split": split, "prompts": prompts}
            for m, by_n in curve.items() for k, acc in by_n.items()]


def plot_scaling(curve: dict[str, dict[int, float]], path: Path, title: str) -> None:
    """Accuracy against N on a log2 axis, one line per method; pass@N (verifier) is drawn
    dashed as the ceiling and greedy flat, as the baseline."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sharpen.rundir import atomic_write

    fig, ax = plt.subplots(figsize=(6, 4))
    for m, by_n in curve.items():
        xs = list(by_n)
        style: dict[str, Any] = {"marker": "o"}
        if m == "verifier":
            style = {"linestyle": "--", "color": "black", "marker": ""}
        elif m == "greedy":
            style = {"linestyle": ":", "color": "gray", "marker": ""}
        ax.plot(xs, [100 * by_n[x] for x in xs], label="pass@N (verifier)" if m == "verifier" else m, **style)
    sizes = sorted({x for by_n in curve.values() for x in by_n})
    ax.set_xscale("log", base=2)
    ax.set_xticks(sizes, [str(s) for s in sizes])
    ax.set_xlabel("N (samples per prompt)")
    ax.set_ylabel("accuracy (%)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    atomic_write(path, buf.getvalue())

