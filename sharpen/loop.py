"""The round loop: sample -> score -> build -> train -> evaluate -> checkpoint.

Round 0 only evaluates the starting policy, so every gain is measured against it.
No state crosses a round boundary except the weights: every random draw of round r
(its prompts, sampling, data order, torch's global RNG) is seeded from (run.seed, r),
and each round's objective starts a fresh optimizer. So the round-r checkpoint is the
whole state, and a run resumed at round r+1 replays exactly what an uninterrupted run
would have done (the resume test checks this bit for bit).

Every input is checked before the run directory is touched (`preflight`); a user mistake
found later in a run this call created removes what it wrote, and any other failure leaves
its traceback in `<run>/error.log`.
"""
from __future__ import annotations

import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
import yaml

from sharpen.anchor import anchor_samples
from sharpen.config import Recipe
from sharpen.engines.openai_client import scrub_keys
from sharpen.errors import UserError
from sharpen.executors import make_executor
from sharpen.feedback.score import run_feedback, score_round
from sharpen.loading import load_policy, resolve_policy_path, set_threads
from sharpen.monitor.base import RoundView
from sharpen.monitor.tracking import make_tracker, steps_before
from sharpen.monitor.train_stats import sample_stats
from sharpen.monitor.watch import merge, monitor_line, run_monitors, start_round, verdict
from sharpen.optional import check_recipe as check_packages
from sharpen.policy import Policy
from sharpen.progress import RichProgress
from sharpen.records import check_same_recipe, load_run_recipe, summary, write_json, write_samples
from sharpen.references import References
from sharpen.registry import BUILDERS, OBJECTIVES
from sharpen.report.html import write_report
from sharpen.reward_models import budget
from sharpen.rollout import (adapt_knobs, evaluate, prompt_seeds, prompts_only, sample_round, sampling_params,
                             sync_engine, with_knobs)
from sharpen.rundir import RunDir, atomic_dir, atomic_write
from sharpen.seeds import derive_seed
from sharpen.tasks import make_task
from sharpen.types import Context, Engine, Scored, group_by_prompt

Log = Callable[[str], None]

__all__ = ["run", "preflight", "resolve_policy_path", "load_policy", "set_threads", "evaluate", "prompt_seeds",
           "load_run_recipe"]


def preflight(recipe: Recipe, rundir: RunDir, log: Log, progress: Any) -> tuple[Any, Path]:
    """Everything a run needs, checked before its directory is written: the folder is new,
    empty or this recipe's run; the optional packages; the task (its data file); the
    starting checkpoint (a seed model is trained into the cache here). Returns (task, base path)."""
    rundir.check_target()
    if rundir.holds_run() and rundir.config_path.exists():
        check_same_recipe(rundir, recipe)
    check_packages(recipe)
    task = make_task(recipe.task)
    return task, resolve_policy_path(recipe, log, progress)


def run(recipe: Recipe, out: str | Path | None = None, log: Log = print, progress: Any = None) -> Path:
    """Run (or continue) `recipe` in a run directory; returns the directory."""
    progress = progress or RichProgress()
    path = Path(out or recipe.run.out or f"runs/{recipe.name}-{time.strftime('%Y%m%d-%H%M%S')}")
    rundir = RunDir(path)
    task, base_path = preflight(recipe, rundir, log, progress)
    existed, fresh = path.exists(), not rundir.config_path.exists()
    with rundir.locked():
        try:
            if getattr(rundir, "stale_owner", ""):
                log(f"took over the lock of a run that died ({rundir.stale_owner})")
            for p in rundir.clean_partial():
                log(f"removed partial write {p}")
            atomic_write(rundir.config_path, yaml.safe_dump(recipe.resolved(), sort_keys=False))
            _run_rounds(recipe, rundir, task, base_path, log, progress)
        except UserError:
            if fresh and not rundir.is_complete(0):
                rundir.remove_new(existed)  # a bad input found late (e.g. corrupt weights): leave nothing behind
            raise
        except Exception as exc:
            exc.sharpen_log = rundir.write_error_log(scrub_keys(traceback.format_exc(), recipe))  # type: ignore[attr-defined]
            raise
    return path


@dataclass
class _Parts:
    """What every round of one run uses."""

    recipe: Recipe
    rundir: RunDir
    task: Any
    engine: Engine
    tracker: Any
    references: References
    base_path: Path
    threads: int
    log: Log
    progress: Any


def _run_rounds(recipe: Recipe, rundir: RunDir, task: Any, base_path: Path, log: Log, progress: Any) -> None:
    start = rundir.first_incomplete_round(recipe.rounds)
    if start > recipe.rounds:
        log(f"{rundir.path}: all {recipe.rounds} rounds are complete")
        return
    done = rundir.metrics()[-1] if start > 0 else None
    if (v := verdict(done)) and v["action"] == "stop":  # a guard stopped this run: resuming does not undo it
        log(f"{rundir.path}: stopped at round {start - 1} by {v['monitor']}: {v['reason']}")
        return
    source = start_round(done, start)  # r - 1, or the round a guard rolled back to
    policy = load_policy(recipe, base_path if source <= 0 else rundir.checkpoint(source))
    threads = set_threads(recipe, policy)
    executor = make_executor(recipe, log)  # this process, or shards on Ray actors (sharpen.executors)
    task = executor.task(task)
    engine = executor.engine(recipe.engine, policy, batch_size=recipe.sample.batch_size)
    tracker = make_tracker(recipe.tracking, rundir.path)
    parts = _Parts(recipe, rundir, task, engine, tracker, References(recipe, rundir, base_path), base_path, threads,
                   log, progress)
    checked: int | None = None  # the policy version the engine was last synced to and checked on
    try:
        if start == 0:
            checked = _round_zero(parts, policy)
            start = 1
        checked = _learned_verifiers(parts, policy, start, checked)
        for r in range(start, recipe.rounds + 1):
            policy, metrics, scored = _train_round(parts, policy, r, checked)
            checked = policy.version
            _record(parts, r, metrics, policy, scored)
            if (v := verdict(metrics)) and v["action"] == "stop":
                log(f"stopping after round {r}: {v['monitor']}: {v['reason']}")
                break
            if v and v["action"] == "rollback" and r < recipe.rounds:  # the next round starts from round k's checkpoint, as on resume
                k = int(v["to_round"])
                policy = load_policy(recipe, base_path if k <= 0 else rundir.checkpoint(k))
                checked = None
                log(f"rolling back: round {r + 1} starts from round {k}")
    finally:
        engine.close()
        tracker.close()
        executor.close()


def _round_zero(p: _Parts, policy: Policy) -> int:
    """Evaluate the starting policy (the baseline every gain is measured against); returns
    the policy version the engine was checked on."""
    recipe = p.recipe
    t0 = time.time()
    torch.manual_seed(derive_seed(recipe.run.seed, "torch", 0))
    sync = sync_engine(p.engine, policy, p.task, recipe, 0)
    splits = evaluate(p.engine, p.task, recipe, p.progress)
    metrics = {"round": 0, "splits": splits, "train": {}, "seconds": {"eval": round(time.time() - t0, 2)},
               "sync": sync, "policy": str(p.base_path)}
    view = RoundView(0, "eval", p.task, recipe.run.seed, metrics=metrics, feedback_kind=recipe.feedback.kind,
                     engine=p.engine, progress=p.progress)
    metrics["monitors"], _ = run_monitors(recipe.monitors, view)  # guards' round-0 reference (the anchor)
    _record(p, 0, metrics)
    return policy.version


def _learned_verifiers(p: _Parts, policy: Policy, start: int, checked: int | None) -> int | None:
    """Reward models the recipe builds in the run, from the starting policy's samples
    (`sharpen.reward_models.budget`), before round 1; a resumed run loads them."""
    missing = budget.pending(p.recipe, p.rundir.path)
    if missing and start > 1:
        raise UserError(f"{missing[0]}: the run's reward model is missing; it is built before round 1, so start a new run")
    if missing and checked != policy.version:  # resumed before round 1: the engine must sample the starting policy
        sync_engine(p.engine, policy, p.task, p.recipe, 0)
        checked = policy.version
    budget.prepare(p.recipe, p.rundir.path, p.engine, p.task, p.base_path, p.log, p.progress)
    return checked


def _train_round(p: _Parts, policy: Policy, r: int, checked: int | None) -> tuple[Policy, dict[str, Any], list[Scored]]:
    """Round r: sample, score, build, train, sync, evaluate. Returns the trained policy, the
    round's metrics and its scored samples. `checked`: the policy version the engine was
    last synced to (a resumed run's first round syncs and checks the loaded weights first)."""
    recipe, task, engine = p.recipe, p.task, p.engine
    torch.manual_seed(derive_seed(recipe.run.seed, "torch", r))
    history = p.rundir.metrics()
    ctx = Context(task=task, policy=policy, round=r, seed=recipe.run.seed, reference=lambda which: policy,
                  progress=p.progress, threads=p.threads, engine=engine, sampling=sampling_params(recipe),
                  on_step=p.tracker.step_logger(steps_before(history)))
    ctx.reference = p.references.for_round(r, ctx)  # copies the starting policy when the objective needs "last"
    t0 = time.time()
    if checked != policy.version:
        sync_engine(engine, policy, task, recipe, r)
    adapt = adapt_knobs(engine, task, recipe, ctx, r) if recipe.adapt else None
    rec = with_knobs(recipe, adapt)  # B-STaR: this round's temperature and threshold
    ctx.sampling = sampling_params(rec)
    uses_samples = recipe.build.uses_samples
    samples = sample_round(engine, task, rec, r, p.progress) if uses_samples else prompts_only(task, recipe, r)
    t_sample = time.time() - t0

    if uses_samples:
        scored, feedback_stats, audit = score_round(samples, recipe.feedback, ctx)
    else:
        scored, feedback_stats, audit = [Scored(s, 0.0) for s in samples], {}, {}
    if getattr(recipe.build, "uses_anchor", False):  # Temporal Self-Rewarding: the initial model's samples
        anchor = anchor_samples(engine, task, recipe, ctx.sampling, p.rundir.path, r, samples, p.progress)
        ctx.anchor = group_by_prompt(run_feedback(anchor, recipe.feedback, ctx).scored)
    built = BUILDERS.get(recipe.build.kind).fn(scored, rec.build, ctx)
    view = RoundView(r, "build", task, recipe.run.seed, scored if uses_samples else [], built, {}, history,
                     recipe.feedback.kind, engine, p.progress)
    monitors, _ = run_monitors(recipe.monitors, view)

    t1 = time.time()
    if recipe.objective.init == "base":  # ReST-EM / original STaR: every round restarts from the base
        policy = ctx.policy = load_policy(recipe, p.base_path, r)
    engine.sleep()  # on a GPU, vLLM hands its memory to the trainer until the next sync
    stats = OBJECTIVES.get(recipe.objective.kind).fn(policy, built.data, recipe.objective, ctx)
    t_train = time.time() - t1

    t2 = time.time()
    sync = sync_engine(engine, policy, task, recipe, r)
    splits = evaluate(engine, task, recipe, p.progress)
    train = {**sample_stats(scored), "kept": len(built.data), **built.stats, **stats}
    metrics = {"round": r, "splits": splits, "train": train, "feedback": feedback_stats, "audit": audit, "sync": sync,
               "seconds": {"sample": round(t_sample, 2), "train": round(t_train, 2), "eval": round(time.time() - t2, 2)}}
    if adapt:
        metrics["adapt"] = adapt
    view.phase, view.metrics = "eval", metrics
    more, decisions = run_monitors(recipe.monitors, view)
    metrics["monitors"] = merge(monitors, more)
    metrics["decisions"] = [d.as_dict() for d in decisions]
    return policy, metrics, scored


def _record(p: _Parts, r: int, metrics: dict[str, Any], policy: Policy | None = None,
            scored: list[Scored] | None = None) -> None:
    """Write round r at once or not at all (samples, checkpoint, then metrics.json, the
    completion marker), refresh the report and the tracker, print the summary."""
    def fill(d: Path) -> None:
        if policy is not None:
            write_samples(d, scored or [], p.recipe.run.samples)
            policy.save(d / "checkpoint")
        write_json(d / "metrics.json", metrics)

    atomic_dir(p.rundir.round_dir(r), fill)
    write_report(p.rundir.path)
    p.tracker.round(metrics)
    p.log(summary(metrics))
    if r > 0:
        p.log(monitor_line(metrics))
