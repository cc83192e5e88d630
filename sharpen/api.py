"""The Python API; the CLI is a thin layer over these functions.

    from sharpen import api
    run_dir = api.run("star", ["rounds=2", "sample.n=4"])
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

from sharpen import loop
from sharpen.config import Recipe, load_recipe
from sharpen.errors import UserError
from sharpen.parallel import run_parallel
from sharpen.rundir import RunDir

Log = Callable[[str], None]


def run(recipe: str | Path | dict | Recipe, overrides: list[str] | None = None, out: str | Path | None = None,
        log: Log = print, progress: Any = None) -> Path:
    """Run a recipe (built-in name, YAML path, mapping or Recipe); returns the run directory."""
    rec = recipe if isinstance(recipe, Recipe) else load_recipe(recipe, overrides)
    return loop.run(rec, out=out, log=log, progress=progress)


def resume(run_dir: str | Path, overrides: list[str] | None = None, log: Log = print, progress: Any = None) -> Path:
    """Continue a run at its first incomplete round (`rounds=N` may extend it)."""
    rec = loop.load_run_recipe(run_dir, overrides)
    return loop.run(rec, out=run_dir, log=log, progress=progress)


def seed(task: str | dict = "arithmetic", seed: int = 0, log: Log = print, progress: Any = None) -> Path:
    """Train (or fetch from the cache) the tiny seed model for a task."""
    from sharpen.seeding import load_or_train_seed

    task_cfg = {"name": task} if isinstance(task, str) else task
    return load_or_train_seed(task_cfg, seed=seed, log=log, progress=progress)


def evaluate(checkpoint: str | Path, task: str | dict = "arithmetic", n: int = 500, k: int = 8,
             splits: tuple[str, ...] = ("eval", "holdout"), seed: int = 0, progress: Any = None,
             engine: str = "hf", max_new_tokens: int | None = None, policy: dict | None = None) -> dict[str, Any]:
    """Held-out greedy / pass@k / maj@k of any local HF checkpoint (or round checkpoint with a
    LoRA adapter, or .gguf file) on a task. An instruct checkpoint's chat template is applied
    (policy.prompt_format auto); `policy` takes other `policy:` keys (dtype, system_prompt...)."""
    from sharpen.engines import make_engine
    from sharpen.progress import RichProgress
    from sharpen.tasks import make_task

    rec = checkpoint_recipe(checkpoint, task, {"n": n, "k": k, "splits": list(splits)}, seed, engine,
                            max_new_tokens, policy)
    path = loop.resolve_policy_path(rec, print, progress)
    pol = loop.load_policy(rec, path)
    loop.set_threads(rec, pol)
    eng = make_engine(rec.engine, pol, batch_size=rec.sample.batch_size)
    try:
        eng.sync(pol)
        return loop.evaluate(eng, make_task(rec.task), rec, progress or RichProgress())
    finally:
        eng.close()


def export(checkpoint: str | Path, out: str | Path, force: bool = False) -> Path:
    """Write a plain HF directory (LoRA adapters merged in) that loads without PEFT or sharpen.
    An existing non-empty `out` is refused unless `force` (then it is replaced)."""
    from sharpen.policy import Policy
    from sharpen.rundir import atomic_dir

    target = Path(out)
    if target.exists() and not force and (not target.is_dir() or any(target.iterdir())):
        raise UserError(f"{target}: already exists and is not empty; choose a new folder, or pass --force to replace it")
    policy = Policy.load(checkpoint)
    atomic_dir(Path(out), policy.save_merged)
    return Path(out)


def control_recipe(rec: Recipe) -> Recipe:
    """The honest ceiling for a rejection-sampling recipe: the same prompts and SFT
    settings, trained on the task's true (reference) completions instead of kept samples."""
    from sharpen.config import validate_recipe

    data = rec.resolved()
    data["name"] = rec.name + "-control"
    data["description"] = "supervised control: SFT on the reference completions of the same prompts"
    data["build"] = {"kind": "reference"}
    data["run"]["out"] = None
    return validate_recipe(data, "control")


def compare(recipes: list[str], budget: int, overrides: list[str] | None = None, out: str | Path | None = None,
            workers: int = 2, log: Log = print) -> Path:
    """Run each recipe from the same seed model with the same total sampling budget
    (rounds x prompts_per_round x n == budget), then write compare.csv and compare.png."""
    root = Path(out or f"runs/compare-{time.strftime('%Y%m%d-%H%M%S')}")
    jobs: dict[str, tuple[Recipe, Path]] = {}
    for name in recipes:
        rec = load_recipe(name, overrides)
        per_round = budget // (rec.rounds * rec.sample.n)
        if per_round < 1:
            raise UserError(f"--budget {budget}: too small for {name} ({rec.rounds} rounds x n={rec.sample.n} samples per prompt)")
        rec = load_recipe(name, [*(overrides or []), f"sample.prompts_per_round={per_round}"])
        jobs[rec.name] = (rec, root / rec.name)
    write_tables(run_parallel(jobs, workers=workers, log=log), root, "compare")
    return root


def write_tables(runs: dict[str, Path], root: Path, stem: str) -> None:
    """<stem>.csv (one row per run, round and split), audit.csv (when rounds audited a
    signal) and <stem>.png: what `compare` and `sweep` leave next to their runs."""
    from sharpen.report.compare import audit_rows, plot, rows, write_csv

    table = rows(runs)
    write_csv(table, root / f"{stem}.csv")
    audit = audit_rows(runs)
    if audit:
        write_csv(audit, root / "audit.csv")
    plot(table, root / f"{stem}.png")


def sweep(recipe: str, grid: list[str], out: str | Path | None = None, workers: int = 2, log: Log = print) -> Path:
    """Run `recipe` at every point of a grid of overrides (`key=v1,v2`; see `sharpen.sweep`),
    each in its own run directory under `out` (an existing one resumes), then write
    sweep.csv and sweep.png as `compare` writes its own (one line per point)."""
    from sharpen.sweep import expand_grid, run_name, swept_keys

    points = expand_grid(grid)
    axes = swept_keys(grid)
    first = load_recipe(recipe, points[0])
    root = Path(out or f"runs/sweep-{first.name}-{time.strftime('%Y%m%d-%H%M%S')}")
    jobs: dict[str, tuple[Recipe, Path]] = {}
    for point in points:
        name = run_name(point, axes)
        jobs[name] = (load_recipe(recipe, point), root / name)
    log(f"sweep: {len(jobs)} runs of {first.name} under {root}")
    write_tables(run_parallel(jobs, workers=workers, log=log), root, "sweep")
    return root


def demo(seed: int = 0, rounds: int = 3, out: str | Path | None = None, log: Log = print) -> dict[str, Any]:
    """Seed the tiny model (if not cached), then STaR and its supervised control side by
    side (two processes, one core each). Returns the seed report and both runs' metrics."""
    from sharpen.progress import RichProgress
    from sharpen.seeding import seed_report

    rec = load_recipe("star", [f"run.seed={seed}", f"rounds={rounds}"])
    seed_path = loop.resolve_policy_path(rec, log, RichProgress())
    root = Path(out or f"runs/demo-seed{seed}-{time.strftime('%Y%m%d-%H%M%S')}")
    runs = run_parallel({"star": (rec, root / "star"), "control": (control_recipe(rec), root / "control")},
                        workers=2, log=log)
    return {"root": root, "seed": seed_report(seed_path) or {}, "star": metrics(runs["star"]),
            "control": metrics(runs["control"])}


def demo_real(seed: int = 0, rounds: int | None = None, out: str | Path | None = None, overrides: list[str] | None = None,
              log: Log = print, progress: Any = None) -> dict[str, Any]:
    """STaR with LoRA on SmolLM2-135M-Instruct (recipe `star_smollm2`) next to its supervised
    control, one after the other (each uses every core: a 135M model's ops do split)."""
    rec = load_recipe("star_smollm2", [f"run.seed={seed}", *([f"rounds={rounds}"] if rounds else []), *(overrides or [])])
    root = Path(out or f"runs/demo-real-seed{seed}-{time.strftime('%Y%m%d-%H%M%S')}")
    loop.resolve_policy_path(rec, log, progress)  # convert the GGUF once, before either run
    runs = {}
    for tag, r in (("star", rec), ("control", control_recipe(rec))):
        runs[tag] = loop.run(r, out=root / tag, log=lambda m, t=tag: log(f"[{t}] {m}"), progress=progress)
    return {"root": root, "star": metrics(runs["star"]), "control": metrics(runs["control"])}


def metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    """metrics.json of every complete round of a run."""
    rd = RunDir(run_dir)
    if not rd.config_path.exists():
        raise UserError(f"{run_dir}: not a run directory (no config.yaml)")
    return rd.metrics()


def checkpoint_recipe(checkpoint: str | Path, task: str | dict, eval_cfg: dict[str, Any], seed: int, engine: str,
                      max_new_tokens: int | None, policy: dict | None) -> Recipe:
    """The recipe that loads a checkpoint for `evaluate`, `select_eval` and `scaling`: the
    task, the policy keys, the engine and an eval block; it trains nothing."""
    from sharpen.optional import check_recipe

    eval_cfg = {**eval_cfg, **({"max_new_tokens": max_new_tokens} if max_new_tokens is not None else {})}
    rec = load_recipe({"name": "eval", "task": {"name": task} if isinstance(task, str) else task,
                       "policy": {**(policy or {}), "path": str(checkpoint)}, "engine": {"kind": engine},
                       "build": "sft", "objective": "sft", "eval": eval_cfg, "run": {"seed": seed}})
    check_recipe(rec)
    return rec


def select_eval(checkpoint: str | Path, task: str | dict = "arithmetic", methods: list[str] | str = "vote",
                n: int = 16, prompts: int = 500, splits: tuple[str, ...] = ("eval", "holdout"), seed: int = 0,
                temperature: float = 0.8, engine: str = "hf", max_new_tokens: int | None = None,
                policy: dict | None = None, progress: Any = None, rm: list[str] | None = None) -> dict[str, dict[str, dict[int, float]]]:
    """Inference-time selection (`sharpen.select`): sample `n` completions per prompt, pick one
    answer per prompt by each method, and return {split: {method: {N': accuracy}}} for N' = 1,
    2, 4, ... and `n`, read from the first N' samples (one sampling and scoring pass)."""
    from sharpen import select
    from sharpen.engines import make_engine
    from sharpen.progress import RichProgress
    from sharpen.tasks import make_task
    from sharpen.types import Context, SamplingParams

    chosen = select.parse_methods(methods)
    sizes = select.prefix_sizes(n)
    if prompts < 1:
        raise UserError(f"--prompts: {prompts}; evaluate at least 1 prompt per split")
    progress = progress or RichProgress()
    rec = checkpoint_recipe(checkpoint, task, {"n": prompts, "k": 0, "splits": list(splits), "temperature": temperature},
                            seed, engine, max_new_tokens, policy)
    tsk = make_task(rec.task)
    select.check_methods(chosen, tsk, rm or [])  # before loading the model: a bad method fails at once
    pol = loop.load_policy(rec, loop.resolve_policy_path(rec, print, progress))
    threads = loop.set_threads(rec, pol)
    eng = make_engine(rec.engine, pol, batch_size=rec.sample.batch_size)
    try:
        eng.sync(pol)
        # the checkpoint is its own reference: a judge or likelihood asking for "base" scores with it
        ctx = Context(task=tsk, policy=pol, round=0, seed=seed, reference=lambda which: pol, progress=progress,
                      threads=threads, engine=eng,
                      sampling=SamplingParams(n=n, temperature=temperature, max_new_tokens=rec.eval.max_new_tokens))
        out: dict[str, dict[str, dict[int, float]]] = {}
        for split in splits:
            ps = tsk.prompts(split, prompts)
            if not ps:
                raise UserError(f"split {split!r}: the task has no {split} prompts; evaluate another split")
            pools = select.build_pools(ctx, ps, chosen, n=n, temperature=temperature,
                                       max_new_tokens=rec.eval.max_new_tokens,
                                       seeds=loop.prompt_seeds(seed, "select", split, ps), label=split,
                                       rm_dirs=rm or [])
            out[split] = select.curves(pools, chosen, sizes)
        return out
    finally:
        eng.close()


def scaling(checkpoint: str | Path, task: str | dict = "arithmetic", methods: list[str] | str | None = None,
            max_n: int = 16, prompts: int = 200, split: str = "holdout", out: str | Path | None = None, seed: int = 0,
            temperature: float = 0.8, engine: str = "hf", max_new_tokens: int | None = None,
            policy: dict | None = None, progress: Any = None, rm: list[str] | None = None) -> dict[str, Any]:
    """Accuracy against N (1, 2, 4, ..., max_n) for each selection method on one split; writes
    scaling.csv (method,n,accuracy,split,prompts) and scaling.png into `out` (default
    `scaling-<checkpoint name>` in the working directory). Returns {"out", "curves", "rows"}."""
    from sharpen import select
    from sharpen.report.compare import write_csv

    chosen = select.parse_methods(methods) if methods else list(select.DEFAULT_SCALING)
    ck = Path(checkpoint)
    root = Path(out) if out is not None else Path(f"scaling-{ck.stem if ck.suffix == '.gguf' else ck.resolve().name}")
    curve = select_eval(checkpoint, task, chosen, n=max_n, prompts=prompts, splits=(split,), seed=seed,
                        temperature=temperature, engine=engine, max_new_tokens=max_new_tokens, policy=policy,
                        progress=progress, rm=rm)[split]
    rows = select.scaling_rows(curve, split, prompts)
    root.mkdir(parents=True, exist_ok=True)
    write_csv(rows, root / "scaling.csv")
    name = task if isinstance(task, str) else task.get("name", "")
    select.plot_scaling(curve, root / "scaling.png", f"{ck.name} on {name} {split} ({prompts} prompts, T={temperature})")
    return {"out": root, "curves": curve, "rows": rows}
