"""`sharpen rm train RUN --kind prm`: a process reward model from a run's own samples.

The samples of round r came from the policy of round r-1, so that policy rolls out from
each step prefix (Math-Shepherd's automatic labels). Held-out prompts (by hash, as for the
outcome RM) are never labelled or trained on; where the task can check each step exactly
(`task.step_labels`, the `chain` task), the PRM's step accuracy and AUROC are measured
against the true step correctness, and so are the automatic labels themselves.
"""
from __future__ import annotations

import random
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Callable

from sharpen.errors import UserError
from sharpen.reward_models.data import is_heldout, load_samples
from sharpen.reward_models.prm import ProcessRewardModel, aggregate, math_shepherd_labels, split_steps
from sharpen.seeds import derive_seed
from sharpen.stats import auroc
from sharpen.types import SamplingParams


def _run_parts(run_dir: Path, r: int) -> tuple[Any, Any, dict[str, Any], Path]:
    """(recipe, task, prompts by id of round r, the checkpoint that sampled round r)."""
    import yaml

    from sharpen.config import validate_recipe
    from sharpen.loading import resolve_policy_path
    from sharpen.rollout import round_prompts
    from sharpen.rundir import RunDir
    from sharpen.tasks import make_task

    recipe = validate_recipe(yaml.safe_load((run_dir / "config.yaml").read_text()), str(run_dir / "config.yaml"))
    task = make_task(recipe.task)
    prompts = {p.id: p for p in round_prompts(task, recipe, r)}
    sampler = resolve_policy_path(recipe, print, None) if r <= 1 else RunDir(run_dir).checkpoint(r - 1)
    return recipe, task, prompts, Path(sampler)


def step_quality(task: Any, items: list[tuple[Any, str]], scores: list[list[float]]) -> dict[str, Any]:
    """Accuracy (score > 0.5 against the truth) and AUROC of step scores, where the task can check steps."""
    if not hasattr(task, "step_labels"):
        return {}
    truth = [task.step_labels(p, c) for p, c in items]
    flat = [(s, t) for ss, ts in zip(scores, truth) if len(ss) == len(ts) for s, t in zip(ss, ts)]
    if not flat:
        return {}
    return {"step_accuracy": sum((s > 0.5) == t for s, t in flat) / len(flat),
            "step_auroc": auroc([s for s, _ in flat], [t for _, t in flat]), "steps": len(flat),
            "true_step_rate": sum(t for _, t in flat) / len(flat)}


def train_process_reward_model(run_dir: Path, out: Path, r: int = 1, rollouts: int = 8, train_prompts: int = 300,
                               heldout_prompts: int = 200, heldout: float = 0.2, label: str = "soft", epochs: int = 3,
                               lr: float = 1e-3, batch_size: int = 32, seed: int = 0, force: bool = False,
                               log: Callable[[str], None] = print, progress: Any = None) -> dict[str, Any]:
    from sharpen.engines import HFEngine
    from sharpen.loading import load_policy
    from sharpen.rundir import atomic_dir

    out = Path(out)
    if out.exists() and not force and (not out.is_dir() or any(out.iterdir())):
        raise UserError(f"--out {out}: already exists and is not empty; choose a new folder, or pass --force to replace it")
    if label not in ("soft", "hard"):
        raise UserError(f"--label {label!r}: use soft (the share of rollouts that reach the answer) or hard (any)")
    if rollouts < 1:
        raise UserError(f"--rollouts {rollouts}: sample at least 1 completion per step prefix")
    samples = load_samples(run_dir, [r])
    recipe, task, prompts, sampler = _run_parts(Path(run_dir), r)
    sep = getattr(task, "step_separator", "\n")
    rng = random.Random(seed)
    ids = sorted({s.prompt_id for s in samples if s.prompt_id in prompts})
    held = [i for i in ids if is_heldout(i, heldout, seed)]
    train = [i for i in ids if not is_heldout(i, heldout, seed)]
    train, held = set(rng.sample(train, min(train_prompts, len(train)))), set(rng.sample(held, min(heldout_prompts, len(held))))
    train_items = [(prompts[s.prompt_id], s.completion) for s in samples if s.prompt_id in train]
    held_items = [(prompts[s.prompt_id], s.completion) for s in samples if s.prompt_id in held]
    if not train_items or not held_items:
        raise UserError(f"{run_dir}: round {r} has too few prompts for a train and a held-out split; use a bigger round")
    policy = load_policy(recipe, sampler)
    if getattr(policy, "prompt_format", "raw") == "chat":  # the step prefix would land inside the user turn
        raise UserError(f"{run_dir}: --kind prm rolls out from raw prompt text, but the run's policy uses a chat "
                        "template; for now train the PRM on a raw-format run (policy.prompt_format=raw)")
    engine = HFEngine(policy, batch_size=recipe.sample.batch_size)
    params = SamplingParams(n=rollouts, temperature=recipe.sample.temperature, top_p=recipe.sample.top_p,
                            max_new_tokens=recipe.sample.max_new_tokens)
    t0 = time.time()
    queries = sum(max(len(split_steps(c, sep)) - 1, 0) for _, c in train_items)
    with (progress("step labels", queries) if progress else nullcontext(lambda k: None)) as advance:
        soft = math_shepherd_labels(engine.generate, task, train_items, rollouts, params,
                                    lambda i, k: derive_seed(seed, "prm-rollout", i, k), sep, progress=advance)
    label_seconds = time.time() - t0
    labels = soft if label == "soft" else [[float(x > 0) for x in row] for row in soft]
    prm = ProcessRewardModel.from_backbone(sampler, sep, seed)
    held_p, held_c = [p.text for p, _ in held_items], [c for _, c in held_items]
    before = step_quality(task, held_items, prm.step_scores(held_p, held_c))
    steps = epochs * ((len(train_items) + batch_size - 1) // batch_size)
    t1 = time.time()
    with (progress("prm train", steps) if progress else nullcontext(lambda k: None)) as advance:
        prm.fit([p.text for p, _ in train_items], [c for _, c in train_items], labels, epochs, lr, batch_size, seed, advance)
    scores = prm.step_scores(held_p, held_c)
    final = [float(task.score_batch([p], [c])[0] >= 1.0) for p, c in held_items]
    result = {"kind": "process", "label": label, "rollouts": rollouts, "round": r, "sampler": str(sampler),
              "data": {"train_prompts": len(train), "train_samples": len(train_items), "heldout_prompts": len(held),
                       "heldout_samples": len(held_items), "rollout_queries": queries},
              "labels_vs_truth": step_quality(task, train_items, soft),
              "heldout_before": before, "heldout": step_quality(task, held_items, scores),
              "solution_auroc": {how: auroc([aggregate(s, how) for s in scores], [y >= 1 for y in final])
                                 for how in ("min", "product", "last")},
              "label_seconds": round(label_seconds, 1), "train_seconds": round(time.time() - t1, 1)}
    prm.meta.update(result)
    atomic_dir(out, prm.save)
    log(f"process reward model on {sampler}: {result['data']}")
    return result
