"""Commands that make or read runs: seed, run, resume, export, demo, demo-real, recipes,
compare, sweep, report."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from sharpen.cli.app import say, pct, app, console, metrics_table


@app.command()
def seed(task: str = typer.Option("arithmetic", help="task to seed the tiny model on (arithmetic, chain, code)"),
         seed: int = typer.Option(0, help="seed of the model init and data order")) -> None:
    """Train the built-in tiny model from scratch to partial competence (cached)."""
    from sharpen import api
    from sharpen.progress import RichProgress
    from sharpen.seeding import seed_report

    path = api.seed(task, seed, log=say, progress=RichProgress())
    rep = seed_report(path) or {}
    say(f"seed model: {path}")
    if rep:
        say(f"steps {rep['steps']}, eval greedy {pct(rep['eval_greedy_accuracy'])}, by op "
             + ", ".join(f"{k} {pct(v)}" for k, v in rep["by_op"].items())
             + ("" if rep.get("in_band") else "  [outside the 20-50% band]"))
        if rep.get("judge"):
            j = rep["judge"]
            auroc = "-" if j.get("auroc") is None else f"{j['auroc']:.3f}"
            say(f"as a judge of its own samples ({j['own_samples']}, {pct(j['own_correct_rate'])} correct): "
                 f"accuracy {pct(j['accuracy'])}, AUROC {auroc}; gold vs corrupted {pct(j['gold_vs_corrupted_accuracy'])}")


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": False})
def run(recipe: str = typer.Argument(..., help="built-in recipe name or path to a recipe YAML"),
        overrides: Optional[list[str]] = typer.Argument(None, help="key=value overrides, e.g. rounds=1 sample.n=4"),
        out: Optional[Path] = typer.Option(None, help="run directory (default runs/<name>-<time>)")) -> None:
    """Run a recipe end to end: round 0 evaluation, then sample/score/build/train rounds."""
    from sharpen import api
    from sharpen.progress import RichProgress

    path = api.run(recipe, overrides or [], out=out, log=say, progress=RichProgress())
    console.print(metrics_table(api.metrics(path), f"{path}"))


@app.command()
def resume(run_dir: Path = typer.Argument(..., help="a run directory"),
           overrides: Optional[list[str]] = typer.Argument(None, help="only rounds=N, run.threads=N, executor=..., ray.*=... or a key "
                                                               "(engine.api_key=..., never written to the run)")) -> None:
    """Continue a run at its first incomplete round."""
    from sharpen import api
    from sharpen.progress import RichProgress

    path = api.resume(run_dir, overrides or [], log=say, progress=RichProgress())
    console.print(metrics_table(api.metrics(path), f"{path}"))


@app.command()
def export(checkpoint: Path = typer.Argument(..., help="a round checkpoint, e.g. runs/NAME/rounds/3/checkpoint"),
           out: Path = typer.Argument(..., help="directory to write the merged model to (new or empty)"),
           force: bool = typer.Option(False, "--force", help="replace OUT even if it is not empty")) -> None:
    """Write a plain Hugging Face model directory (LoRA adapters merged in) that loads anywhere."""
    from sharpen import api

    say(f"wrote {api.export(checkpoint, out, force=force)}")


@app.command()
def demo(seed: int = typer.Option(0, help="seed for the seed model and the run"),
         rounds: int = typer.Option(3, min=1),
         out: Optional[Path] = typer.Option(None)) -> None:
    """Seed the tiny model if needed, run STaR next to its supervised control, print the table."""
    from sharpen import api

    t0 = time.time()
    res = api.demo(seed, rounds, out, log=say)
    rep, star, control = res["seed"], res["star"], res["control"]
    say(f"seed model: {rep.get('steps')} steps, eval greedy {pct(rep.get('eval_greedy_accuracy'))}")
    console.print(metrics_table(star, f"STaR on arithmetic, seed {seed} ({res['root']})", control=control))
    gain = star[-1]["splits"]["holdout"]["greedy_accuracy"] - star[0]["splits"]["holdout"]["greedy_accuracy"]
    cgain = control[-1]["splits"]["holdout"]["greedy_accuracy"] - control[0]["splits"]["holdout"]["greedy_accuracy"]
    say(f"held-out greedy gain after {rounds} rounds: STaR {100 * gain:+.1f} points, "
         f"supervised control {100 * cgain:+.1f} points ({time.time() - t0:.0f} s)")


@app.command("demo-real")
def demo_real(seed: int = typer.Option(0, help="seed for the run's prompts, samples and adapters"),
              rounds: Optional[int] = typer.Option(None, min=1, help="rounds (default: the recipe's)"),
              out: Optional[Path] = typer.Option(None),
              overrides: list[str] = typer.Option([], "--set", help="key=value applied to both runs, e.g. engine.kind=vllm")) -> None:
    """STaR with LoRA on SmolLM2-135M-Instruct next to its supervised control; held-out accuracy by round."""
    from sharpen import api
    from sharpen.progress import RichProgress

    t0 = time.time()
    res = api.demo_real(seed, rounds, out, overrides, log=say, progress=RichProgress())
    star, control = res["star"], res["control"]
    console.print(metrics_table(star, f"STaR + LoRA on SmolLM2-135M-Instruct, word problems, seed {seed} ({res['root']})",
                                control=control))
    first, last = star[0]["splits"]["holdout"]["greedy_accuracy"], star[-1]["splits"]["holdout"]["greedy_accuracy"]
    cfirst, clast = control[0]["splits"]["holdout"]["greedy_accuracy"], control[-1]["splits"]["holdout"]["greedy_accuracy"]
    say(f"held-out greedy gain after {len(star) - 1} rounds: STaR {100 * (last - first):+.1f} points, "
         f"supervised control {100 * (clast - cfirst):+.1f} points ({time.time() - t0:.0f} s)")


@app.command()
def recipes(keys: bool = typer.Option(False, "--keys", help="also list every part and its knobs")) -> None:
    """List the built-in recipes and the paper each reproduces."""
    import yaml

    from sharpen.config import builtin_recipes
    from sharpen.registry import BUILDERS, FEEDBACK, MONITORS, OBJECTIVES, TASKS

    t = Table(title="built-in recipes (sharpen run NAME)")
    for col in ("name", "description", "paper"):
        t.add_column(col)
    for name, path in builtin_recipes().items():
        data = yaml.safe_load(path.read_text())
        t.add_row(name, data.get("description", ""), data.get("paper", ""))
    console.print(t)
    if keys:
        for reg in (TASKS, FEEDBACK, BUILDERS, OBJECTIVES, MONITORS):
            for name in reg.names():
                e = reg.get(name)
                fields = ", ".join(f"{f}=<required>" if v.is_required() else f"{f}={v.get_default(call_default_factory=True)!r}"
                                   for f, v in e.config.model_fields.items() if f not in ("kind", "name"))
                say(f"{reg.part} {name}: {e.description}  ({fields})")


@app.command()
def compare(recipes: list[str] = typer.Argument(..., help="recipe names or YAML paths"),
            budget: int = typer.Option(..., min=1, help="total training samples per recipe (rounds x prompts x n)"),
            overrides: list[str] = typer.Option([], "--set", help="key=value applied to every recipe"),
            out: Optional[Path] = typer.Option(None), workers: int = typer.Option(2, min=1)) -> None:
    """Run recipes from the same seed model on one sampling budget; CSV + PNG side by side."""
    from sharpen import api

    root = api.compare(recipes, budget, overrides, out=out, workers=workers, log=say)
    t = Table(title=f"compare ({root}): holdout, per round")
    import csv

    rows = [r for r in csv.DictReader(open(root / "compare.csv")) if r["split"] == "holdout"]
    for col in ("recipe", "round", "greedy", "pass@k", "maj@k", "kept"):
        t.add_column(col, justify="right")
    for r in rows:
        f = lambda x: pct(float(x)) if x not in ("", "None") else "-"  # noqa: E731
        t.add_row(r["recipe"], r["round"], f(r["greedy_accuracy"]), f(r["pass_at_k"]), f(r["majority_accuracy"]), r["kept"])
    console.print(t)
    say(f"wrote {root / 'compare.csv'} and {root / 'compare.png'}")


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": False})
def sweep(recipe: str = typer.Argument(..., help="built-in recipe name or path to a recipe YAML"),
          grid: list[str] = typer.Argument(..., help="key=v1,v2 (an axis) or key=value (every run), e.g. sample.n=4,8 objective.lr=1e-3,5e-4"),
          out: Optional[Path] = typer.Option(None, help="sweep directory (default runs/sweep-<name>-<time>); an existing one resumes"),
          workers: int = typer.Option(2, min=1, help="local processes at a time (executor=ray: the cluster's resources decide)")) -> None:
    """Run a recipe over a grid of overrides, one run directory per point; CSV + PNG side by side."""
    from sharpen import api

    root = api.sweep(recipe, grid, out=out, workers=workers, log=say)
    say(f"wrote {root / 'sweep.csv'} and {root / 'sweep.png'}")


@app.command()
def report(run_dirs: list[Path] = typer.Argument(..., help="one or more run directories (several are overlaid)"),
           out: Optional[Path] = typer.Option(None, help="output file (default: RUN_DIR/report.html for one run, ./report.html for several)")) -> None:
    """Print each run's per-round metrics table and write one self-contained report.html."""
    from sharpen import api
    from sharpen.report.html import write_report

    for run_dir in run_dirs:
        console.print(metrics_table(api.metrics(run_dir), str(run_dir)))
    say(f"wrote {write_report(list(run_dirs), out)}")
