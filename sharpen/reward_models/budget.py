"""A reward model built inside the run from a labelled budget, so one command runs
grpo_rm, grpo_rm_ensemble or rest_rm.

Before round 1 the starting policy samples `train.n` completions for each of
`train.prompts` train prompts (round 0's draw, which no training round uses); the verifier
labels them, and that budget is all the verifier gives training. The RM (or ensemble) is
trained on the starting checkpoint as backbone and saved under `<run>/reward_models/<name>`,
its held-out quality in the directory's sharpen_rm.json (or sharpen_ensemble.json). A
resumed run loads it from there instead of building it again.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterator

from sharpen.feedback.reward_model import EnsembleSpec, RewardModelConfig
from sharpen.feedback.verifier import verify
from sharpen.reward_models.data import Labelled
from sharpen.reward_models.ensemble import holds_reward_model
from sharpen.reward_models.train import RMTrainConfig, split_data, train_and_save
from sharpen.rollout import prompt_seeds
from sharpen.types import Sample, SamplingParams


def learned(feedback: Any) -> Iterator[RewardModelConfig]:
    """Every reward-model block that builds in the run: the feedback, a combine's parts, the audit."""
    for cfg in [feedback, *(getattr(feedback, "parts", None) or []), *(getattr(feedback, "audit", None) or [])]:
        if isinstance(cfg, RewardModelConfig) and cfg.in_run:
            yield cfg


def _dirs(recipe: Any, run_dir: Path) -> list[tuple[RewardModelConfig, Path]]:
    out, seen = [], set()
    for cfg in learned(recipe.feedback):
        name = cfg.signal_name()
        name = name if name not in seen else f"{name}-{len(seen)}"
        seen.add(name)
        out.append((cfg, Path(run_dir) / "reward_models" / name))
    return out


def pending(recipe: Any, run_dir: Path) -> list[Path]:
    """The run's reward-model directories not written yet."""
    return [d for _, d in _dirs(recipe, run_dir) if not holds_reward_model(d)]


def prepare(recipe: Any, run_dir: Path, engine: Any, task: Any, base_path: Path, log: Callable[[str], None],
            progress: Any) -> None:
    """Build what is missing (the engine must hold the starting policy), then point each
    config at its directory."""
    for cfg, out in _dirs(recipe, run_dir):
        if not holds_reward_model(out):
            build(cfg, out, recipe, engine, task, base_path, log, progress)
        cfg._built = str(out)


def build(cfg: RewardModelConfig, out: Path, recipe: Any, engine: Any, task: Any, base_path: Path,
          log: Callable[[str], None], progress: Any) -> dict[str, Any]:
    budget, ens = cfg.train, cfg.ensemble or EnsembleSpec(k=1)
    assert budget is not None
    prompts = task.prompts("train", budget.prompts, round=0)
    s = recipe.sample
    params = SamplingParams(n=budget.n, temperature=s.temperature, top_p=s.top_p, max_new_tokens=s.max_new_tokens)
    with progress("rm budget", len(prompts)) as advance:
        groups = engine.generate([p.text for p in prompts], params, prompt_seeds(recipe.run.seed, "rm-budget", 0, prompts),
                                 progress=advance)
    scored = verify([Sample(p, c, i) for p, g in zip(prompts, groups) for i, c in enumerate(g)], task)
    labelled = [Labelled(x.sample.prompt.id, x.sample.prompt.text, x.sample.text, bool(x.correct)) for x in scored]
    tc = RMTrainConfig(loss=budget.loss, epochs=budget.epochs, lr=budget.lr, batch_size=budget.batch_size,
                       heldout=budget.heldout, max_pairs_per_prompt=budget.max_pairs_per_prompt,
                       label_noise=budget.label_noise, lora_r=budget.lora_r, seed=recipe.run.seed, members=ens.k,
                       heads=ens.heads, bootstrap=ens.bootstrap)
    data = split_data(tc, labelled, [])
    log(f"reward model {out.name}: {len(prompts)} prompts x {budget.n} labelled by the verifier "
        f"({sum(x.label for x in labelled) / max(len(labelled), 1):.0%} right); training {ens.k} "
        f"{'head' if ens.heads else 'model'}{'s' * (ens.k > 1)} on {data.summary()['train_pairs']} pairs")
    result = train_and_save(tc, data, base_path, recipe.policy.prompt_format, recipe.policy.system_prompt, out, log,
                            progress)
    held = result["heldout"].get(cfg.aggregate, result["heldout"]) if ens.k > 1 else result["heldout"]
    log(f"reward model {out.name}: held-out pairwise {held.get('pairwise_accuracy', float('nan')):.1%}, "
        f"AUROC {held.get('auroc', float('nan')):.1%} ({result['train_seconds']:.0f} s)")
    return result
