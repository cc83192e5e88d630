"""One round's sampling and measuring: the prompts it draws, the samples it takes, the sync
check that proves the engine samples the trainer's weights, held-out evaluation, and
B-STaR's adapted knobs. Every draw is seeded per prompt from (run seed, purpose, round)."""
from __future__ import annotations

from typing import Any

from sharpen.config import Recipe
from sharpen.engines import check_sync, default_tolerance, logprob_gap
from sharpen.errors import UserError
from sharpen.feedback.score import run_feedback
from sharpen.monitor.adaptive import choose_knobs
from sharpen.monitor.metrics import evaluate_split
from sharpen.seeds import derive_seed
from sharpen.types import Completion, Context, Engine, PolicyModel, Sample, SamplingParams


def prompt_seeds(seed: int, purpose: str, r: Any, prompts: list[Any]) -> list[int]:
    """One seed per prompt from (run seed, purpose, round, prompt id): a prompt's samples do
    not depend on which other prompts are drawn with it, or on how they are batched."""
    return [derive_seed(seed, purpose, r, p.id) for p in prompts]


def evaluate(engine: Engine, task: Any, recipe: Recipe, progress: Any) -> dict[str, Any]:
    """Greedy (and, with eval.k, pass@k / maj@k) accuracy on each of eval.splits."""
    splits = {}
    for split in recipe.eval.splits:
        prompts = task.prompts(split, recipe.eval.n)
        if not prompts:
            raise UserError(f"eval.splits: the task has no {split!r} prompts; add {split} rows or drop {split} from eval.splits")
        with progress(f"eval {split}", len(prompts) * (2 if recipe.eval.k else 1)) as advance:
            splits[split] = evaluate_split(
                engine, task, prompts, k=recipe.eval.k, temperature=recipe.eval.temperature,
                max_new_tokens=recipe.eval.max_new_tokens,
                seeds=prompt_seeds(recipe.run.seed, "eval", split, prompts), progress=advance,
            )
    return splits


def sampling_params(recipe: Recipe) -> SamplingParams:
    s = recipe.sample
    return SamplingParams(n=s.n, temperature=s.temperature, top_p=s.top_p, max_new_tokens=s.max_new_tokens)


def round_prompts(task: Any, recipe: Recipe, r: int) -> list[Any]:
    """Round r's training questions: fresh train prompts each round, or (test-time training)
    the first prompts_per_round of a held-out split, the same ones every round."""
    return task.prompts(recipe.sample.split, recipe.sample.prompts_per_round, round=r)


def sample_round(engine: Engine, task: Any, recipe: Recipe, r: int, progress: Any) -> list[Sample]:
    prompts = round_prompts(task, recipe, r)
    params = sampling_params(recipe)
    with progress("sampling", len(prompts)) as advance:
        groups = engine.generate([p.text for p in prompts], params, prompt_seeds(recipe.run.seed, "sample", r, prompts),
                                 progress=advance)
    return [Sample(p, c, i) for p, g in zip(prompts, groups) for i, c in enumerate(g)]


def prompts_only(task: Any, recipe: Recipe, r: int) -> list[Sample]:
    """The round's prompts with empty completions, for a builder that samples nothing (the
    supervised control): it still sees exactly the prompts a sampling recipe would."""
    prompts = round_prompts(task, recipe, r)
    return [Sample(p, Completion("", [], [], False), 0) for p in prompts]


def sync_engine(engine: Engine, policy: PolicyModel, task: Any, recipe: Recipe, r: int) -> dict[str, Any]:
    """Make the engine sample the policy's weights, then prove it: the engine's log-probs of
    a probe of its own samples must match the trainer's (`sharpen.engines.sync`)."""
    engine.sync(policy)
    cfg = recipe.engine
    if not engine.syncs_weights:
        return {"engine": engine.name, "skipped": "the engine samples a server's weights, not the policy's"}
    if cfg.sync_probe == 0:
        return {"engine": engine.name, "skipped": "engine.sync_probe=0"}
    probe = task.prompts("train", cfg.sync_probe, round=r)
    s = recipe.sample
    params = SamplingParams(n=1, temperature=s.temperature, top_p=s.top_p, max_new_tokens=s.max_new_tokens)
    report = logprob_gap(engine, policy, [p.text for p in probe], params, prompt_seeds(recipe.run.seed, "sync", r, probe))
    tolerance = cfg.sync_tolerance or default_tolerance(policy, engine)
    check_sync(report, tolerance, engine.name)
    return {"engine": engine.name, **report.as_dict(), "tolerance": tolerance}


def adapt_knobs(engine: Engine, task: Any, recipe: Recipe, ctx: Context, r: int) -> dict[str, Any]:
    """B-STaR: the round's temperature and threshold, by balance score on a probe of its prompts."""
    assert recipe.adapt is not None
    probe = task.prompts(recipe.sample.split, min(recipe.adapt.probe, recipe.sample.prompts_per_round), round=r)
    return choose_knobs(recipe.adapt, probe, sampling_params(recipe), recipe.run.seed, r, engine.generate,
                        lambda samples: run_feedback(samples, recipe.feedback, ctx).scored)


def with_knobs(recipe: Recipe, adapt: dict[str, Any] | None) -> Recipe:
    """The recipe with this round's adapted sampling temperature and build threshold."""
    if not adapt:
        return recipe
    return recipe.model_copy(update={"sample": recipe.sample.model_copy(update={"temperature": adapt["temperature"]}),
                                     "build": recipe.build.model_copy(update={"threshold": adapt["threshold"]})})
