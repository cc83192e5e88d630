"""`sharpen` command line: a thin typer layer over `sharpen.api`.

A user mistake (bad recipe key or value, missing file, corrupt checkpoint) prints one
`error:` line naming the field or file and the fix, and exits with code 2.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any, NoReturn, Optional

import typer
from rich.console import Console
from rich.table import Table

from sharpen.errors import UserError

# the names only, for --help (importing sharpen.select would load torch before every command)
SELECT_METHODS = ("greedy", "vote", "certainty", "borda", "likelihood", "judge", "verifier")

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="sharpen: self-improving language models, one recipe per paper.")
console = Console()
err = Console(stderr=True)


def _log(msg: str) -> None:
    console.print(msg, highlight=False, soft_wrap=True, markup=False)


def _pct(x: Any) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def metrics_table(metrics: list[dict], title: str, split: str = "holdout", control: list[dict] | None = None) -> Table:
    """Round vs held-out accuracy (and the supervised control, when given)."""
    t = Table(title=title)
    k = next((m["splits"][split].get("k") for m in metrics if split in m["splits"]), 8)
    sampled = (f"pass@{k}", f"maj@{k}") if k else ()  # eval.k=0 measures greedy only
    for col in ("round", f"{split} greedy", *sampled, "kept", "seconds"):
        t.add_column(col, justify="right")
    if control is not None:
        t.add_column("control greedy", justify="right")
    for i, m in enumerate(metrics):
        s = m["splits"].get(split, {})
        row = [str(m["round"]), _pct(s.get("greedy_accuracy")),
               *((_pct(s.get("pass_at_k")), _pct(s.get("majority_accuracy"))) if k else ()),
               str(m["train"].get("kept", "-")), f"{sum(m['seconds'].values()):.0f}"]
        if control is not None:
            row.append(_pct(control[i]["splits"].get(split, {}).get("greedy_accuracy")) if i < len(control) else "-")
        t.add_row(*row)
    return t


@app.command()
def seed(task: str = typer.Option("arithmetic", help="task to seed the tiny model on (arithmetic, code)"),
         seed: int = typer.Option(0, help="seed of the model init and data order")) -> None:
    """Train the built-in tiny model from scratch to partial competence (cached)."""
    from sharpen import api
    from sharpen.progress import RichProgress
    from sharpen.seeding import seed_report

    path = api.seed(task, seed, log=_log, progress=RichProgress())
    rep = seed_report(path) or {}
    _log(f"seed model: {path}")
    if rep:
        _log(f"steps {rep['steps']}, eval greedy {_pct(rep['eval_greedy_accuracy'])}, by op "
             + ", ".join(f"{k} {_pct(v)}" for k, v in rep["by_op"].items())
             + ("" if rep.get("in_band") else "  [outside the 20-50% band]"))
        if rep.get("judge"):
            j = rep["judge"]
            auroc = "-" if j.get("auroc") is None else f"{j['auroc']:.3f}"
            _log(f"as a judge of its own samples ({j['own_samples']}, {_pct(j['own_correct_rate'])} correct): "
                 f"accuracy {_pct(j['accuracy'])}, AUROC {auroc}; gold vs corrupted {_pct(j['gold_vs_corrupted_accuracy'])}")


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": False})
def run(recipe: str = typer.Argument(..., help="built-in recipe name or path to a recipe YAML"),
        overrides: Optional[list[str]] = typer.Argument(None, help="key=value overrides, e.g. rounds=1 sample.n=4"),
        out: Optional[Path] = typer.Option(None, help="run directory (default runs/<name>-<time>)")) -> None:
    """Run a recipe end to end: round 0 evaluation, then sample/score/build/train rounds."""
    from sharpen import api
    from sharpen.progress import RichProgress

    path = api.run(recipe, overrides or [], out=out, log=_log, progress=RichProgress())
    console.print(metrics_table(api.metrics(path), f"{path}"))


@app.command()
def resume(run_dir: Path = typer.Argument(..., help="a run directory"),
           overrides: Optional[list[str]] = typer.Argument(None, help="only rounds=N or run.threads=N")) -> None:
    """Continue a run at its first incomplete round."""
    from sharpen import api
    from sharpen.progress import RichProgress

    path = api.resume(run_dir, overrides or [], log=_log, progress=RichProgress())
    console.print(metrics_table(api.metrics(path), f"{path}"))


@app.command("eval")
def eval_(checkpoint: Path = typer.Argument(..., help="a Hugging Face model directory, a round checkpoint (LoRA adapter) or a .gguf file"),
          overrides: Optional[list[str]] = typer.Argument(None, help="task.KEY=VALUE or policy.KEY=VALUE, e.g. task.path=data.jsonl policy.system_prompt=..."),
          task: str = typer.Option("arithmetic", help="task name"),
          prompts: int = typer.Option(500, min=1, help="prompts per split"),
          k: int = typer.Option(8, min=0, help="samples per prompt for pass@k / maj@k (without --select)"),
          select: Optional[list[str]] = typer.Option(None, help="pick one answer from --n samples per prompt: "
                                                     + "|".join(SELECT_METHODS) + " (comma-separated or repeated)"),
          n: Optional[int] = typer.Option(None, min=1, help="samples per prompt for --select (default 16)"),
          engine: str = typer.Option("hf", help="sampling engine: hf or vllm"),
          max_new_tokens: Optional[int] = typer.Option(None, min=1, help="completion length (default: the task's)"),
          seed: int = typer.Option(0)) -> None:
    """Evaluate a checkpoint on a task's held-out splits (an instruct model's chat template is applied);
    with --select, the accuracy of inference-time selection from N samples per prompt."""
    from sharpen import api
    from sharpen.progress import RichProgress

    task_cfg, policy_cfg = eval_config(task, overrides or [])
    if select:
        samples = n or 16
        res = api.select_eval(checkpoint, task_cfg, select, n=samples, prompts=prompts, seed=seed, engine=engine,
                              max_new_tokens=max_new_tokens, policy=policy_cfg, progress=RichProgress())
        t = Table(title=f"{checkpoint} on {task}: selection from N={samples} samples per prompt")
        for col in ("split", "method", f"accuracy@{samples}"):
            t.add_column(col, justify="right")
        for split, by_method in res.items():
            for method, curve in by_method.items():
                t.add_row(split, method, _pct(curve[samples]))
        console.print(t)
        return
    if n is not None:
        raise UserError(f"--n {n}: --n is the samples per prompt for --select; prompts per split is --prompts")
    res = api.evaluate(checkpoint, task_cfg, n=prompts, k=k, seed=seed, engine=engine, max_new_tokens=max_new_tokens,
                       policy=policy_cfg, progress=RichProgress())
    t = Table(title=f"{checkpoint} on {task}")
    for col in ("split", "greedy", f"pass@{k}", f"maj@{k}", "n"):
        t.add_column(col, justify="right")
    for split, s in res.items():
        t.add_row(split, _pct(s["greedy_accuracy"]), _pct(s.get("pass_at_k")), _pct(s.get("majority_accuracy")), str(s["n"]))
    console.print(t)


@app.command()
def scaling(checkpoint: Path = typer.Argument(..., help="a Hugging Face model directory, a round checkpoint or a .gguf file"),
            overrides: Optional[list[str]] = typer.Argument(None, help="task.KEY=VALUE or policy.KEY=VALUE"),
            task: str = typer.Option("arithmetic", help="task name"),
            prompts: int = typer.Option(200, min=1, help="prompts of the split"),
            max_n: int = typer.Option(16, min=1, help="largest N; curves at N = 1, 2, 4, ..., max-n"),
            methods: Optional[list[str]] = typer.Option(None, help=f"{'|'.join(SELECT_METHODS)}, comma-separated or repeated "
                                                        "(default: all but judge)"),
            split: str = typer.Option("holdout", help="eval or holdout"),
            temperature: float = typer.Option(0.8, min=0.0, help="sampling temperature"),
            out: Optional[Path] = typer.Option(None, help="output directory (default scaling-<checkpoint name>)"),
            engine: str = typer.Option("hf", help="sampling engine: hf or vllm"),
            max_new_tokens: Optional[int] = typer.Option(None, min=1, help="completion length (default: the task's)"),
            seed: int = typer.Option(0)) -> None:
    """Test-time scaling: accuracy of each selection method against N samples per prompt; table, CSV and PNG."""
    from sharpen import api
    from sharpen.progress import RichProgress

    task_cfg, policy_cfg = eval_config(task, overrides or [])
    res = api.scaling(checkpoint, task_cfg, methods, max_n=max_n, prompts=prompts, split=split, out=out, seed=seed,
                      temperature=temperature, engine=engine, max_new_tokens=max_new_tokens, policy=policy_cfg,
                      progress=RichProgress())
    curves = res["curves"]
    sizes = sorted({s for c in curves.values() for s in c})
    t = Table(title=f"{checkpoint} on {task} {split} ({prompts} prompts): accuracy by N")
    for col in ("method", *(f"N={s}" for s in sizes)):
        t.add_column(col, justify="right")
    for method, curve in curves.items():
        t.add_row("pass@N (verifier)" if method == "verifier" else method, *(_pct(curve.get(s)) for s in sizes))
    console.print(t)
    _log(f"wrote {res['out'] / 'scaling.csv'} and {res['out'] / 'scaling.png'}")


def eval_config(name: str, overrides: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The task block `{"name": name, KEY: value, ...}` and the policy block, from `task.KEY=VALUE`
    and `policy.KEY=VALUE` overrides, parsed as `run` parses them."""
    from sharpen.config import apply_overrides

    for item in overrides:
        key = item.partition("=")[0].strip()
        if not (key.startswith("task.") or key.startswith("policy.")) or key == "policy.path":
            raise UserError(f"override {item!r}: eval takes only task.KEY=VALUE and policy.KEY=VALUE overrides "
                            "(e.g. task.path=data.jsonl); use --prompts, --k, --max-new-tokens, --engine for the rest")
    data = apply_overrides({"task": {"name": name}, "policy": {}}, overrides)
    return data["task"], data["policy"]


def task_config(name: str, overrides: list[str]) -> dict[str, Any]:
    """The task block alone (see `eval_config`)."""
    return eval_config(name, [o for o in overrides if o.startswith("task.")])[0]


@app.command()
def export(checkpoint: Path = typer.Argument(..., help="a round checkpoint, e.g. runs/NAME/rounds/3/checkpoint"),
           out: Path = typer.Argument(..., help="directory to write the merged model to (new or empty)"),
           force: bool = typer.Option(False, "--force", help="replace OUT even if it is not empty")) -> None:
    """Write a plain Hugging Face model directory (LoRA adapters merged in) that loads anywhere."""
    from sharpen import api

    _log(f"wrote {api.export(checkpoint, out, force=force)}")


@app.command()
def demo(seed: int = typer.Option(0, help="seed for the seed model and the run"),
         rounds: int = typer.Option(3, min=1),
         out: Optional[Path] = typer.Option(None)) -> None:
    """Seed the tiny model if needed, run STaR next to its supervised control, print the table."""
    from sharpen import api

    t0 = time.time()
    res = api.demo(seed, rounds, out, log=_log)
    rep, star, control = res["seed"], res["star"], res["control"]
    _log(f"seed model: {rep.get('steps')} steps, eval greedy {_pct(rep.get('eval_greedy_accuracy'))}")
    console.print(metrics_table(star, f"STaR on arithmetic, seed {seed} ({res['root']})", control=control))
    gain = star[-1]["splits"]["holdout"]["greedy_accuracy"] - star[0]["splits"]["holdout"]["greedy_accuracy"]
    cgain = control[-1]["splits"]["holdout"]["greedy_accuracy"] - control[0]["splits"]["holdout"]["greedy_accuracy"]
    _log(f"held-out greedy gain after {rounds} rounds: STaR {100 * gain:+.1f} points, "
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
    res = api.demo_real(seed, rounds, out, overrides, log=_log, progress=RichProgress())
    star, control = res["star"], res["control"]
    console.print(metrics_table(star, f"STaR + LoRA on SmolLM2-135M-Instruct, word problems, seed {seed} ({res['root']})",
                                control=control))
    first, last = star[0]["splits"]["holdout"]["greedy_accuracy"], star[-1]["splits"]["holdout"]["greedy_accuracy"]
    cfirst, clast = control[0]["splits"]["holdout"]["greedy_accuracy"], control[-1]["splits"]["holdout"]["greedy_accuracy"]
    _log(f"held-out greedy gain after {len(star) - 1} rounds: STaR {100 * (last - first):+.1f} points, "
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
                _log(f"{reg.part} {name}: {e.description}  ({fields})")


@app.command()
def compare(recipes: list[str] = typer.Argument(..., help="recipe names or YAML paths"),
            budget: int = typer.Option(..., min=1, help="total training samples per recipe (rounds x prompts x n)"),
            overrides: list[str] = typer.Option([], "--set", help="key=value applied to every recipe"),
            out: Optional[Path] = typer.Option(None), workers: int = typer.Option(2, min=1)) -> None:
    """Run recipes from the same seed model on one sampling budget; CSV + PNG side by side."""
    from sharpen import api

    root = api.compare(recipes, budget, overrides, out=out, workers=workers, log=_log)
    t = Table(title=f"compare ({root}): holdout, per round")
    import csv

    rows = [r for r in csv.DictReader(open(root / "compare.csv")) if r["split"] == "holdout"]
    for col in ("recipe", "round", "greedy", "pass@k", "maj@k", "kept"):
        t.add_column(col, justify="right")
    for r in rows:
        f = lambda x: _pct(float(x)) if x not in ("", "None") else "-"  # noqa: E731
        t.add_row(r["recipe"], r["round"], f(r["greedy_accuracy"]), f(r["pass_at_k"]), f(r["majority_accuracy"]), r["kept"])
    console.print(t)
    _log(f"wrote {root / 'compare.csv'} and {root / 'compare.png'}")


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": False})
def sweep(recipe: str = typer.Argument(..., help="built-in recipe name or path to a recipe YAML"),
          grid: list[str] = typer.Argument(..., help="key=v1,v2 (an axis) or key=value (every run), e.g. sample.n=4,8 objective.lr=1e-3,5e-4"),
          out: Optional[Path] = typer.Option(None, help="sweep directory (default runs/sweep-<name>-<time>); an existing one resumes"),
          workers: int = typer.Option(2, min=1, help="local processes at a time (executor=ray: the cluster's resources decide)")) -> None:
    """Run a recipe over a grid of overrides, one run directory per point; CSV + PNG side by side."""
    from sharpen import api

    root = api.sweep(recipe, grid, out=out, workers=workers, log=_log)
    _log(f"wrote {root / 'sweep.csv'} and {root / 'sweep.png'}")


@app.command()
def report(run_dirs: list[Path] = typer.Argument(..., help="one or more run directories (several are overlaid)"),
           out: Optional[Path] = typer.Option(None, help="output file (default: RUN_DIR/report.html for one run, ./report.html for several)")) -> None:
    """Print each run's per-round metrics table and write one self-contained report.html."""
    from sharpen import api
    from sharpen.report.html import write_report

    for run_dir in run_dirs:
        console.print(metrics_table(api.metrics(run_dir), str(run_dir)))
    _log(f"wrote {write_report(list(run_dirs), out)}")


def _click_errors() -> tuple[tuple[type[BaseException], ...], tuple[type[BaseException], ...]]:
    """(usage-error, abort) exception classes of the click that typer runs on: typer 0.29
    vendors click as `typer._click` (with its own Abort); older typers use `click` itself."""
    usage: list[type[BaseException]] = []
    abort: list[type[BaseException]] = []
    try:
        from typer._click.exceptions import ClickException as TyperClickException
        from typer.exceptions import Abort as TyperAbort

        usage.append(TyperClickException)
        abort.append(TyperAbort)
    except ImportError:
        pass
    try:
        import click

        usage.append(click.exceptions.ClickException)
        abort.append(click.exceptions.Abort)
    except ImportError:
        pass
    return tuple(usage), tuple(abort)


def _interrupted() -> NoReturn:
    err.print("interrupted: finished rounds are saved; `sharpen resume RUN_DIR` continues")
    sys.exit(130)


def _error_line(msg: str, code: int) -> NoReturn:
    err.print(f"error: {msg}", highlight=False, soft_wrap=True, markup=False)
    sys.exit(code)


def _crashed(e: Exception) -> NoReturn:
    """Not a user mistake: one line naming the log that holds the traceback (exit 1); a
    missing optional package is a user's to install (exit 2)."""
    import traceback

    from sharpen.optional import PACKAGES, missing_error
    from sharpen.rundir import write_error_log

    if isinstance(e, ModuleNotFoundError) and (e.name or "").split(".")[0] in PACKAGES:
        _error_line(str(missing_error(e.name.split(".")[0], "this command")), 2)  # type: ignore[union-attr]
    log = getattr(e, "sharpen_log", None) or write_error_log("".join(traceback.format_exception(e)))
    _error_line(f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''} (unexpected; the traceback is in {log})", 1)


def main() -> None:
    usage, abort = _click_errors()
    try:
        code = app(standalone_mode=False, prog_name="sharpen")
    except UserError as e:
        _error_line(str(e), 2)
    except KeyboardInterrupt:
        _interrupted()
    except usage as e:  # a missing argument, unknown option, bad option value: click's usage line + error
        if e.format_message().strip():  # type: ignore[attr-defined]  # empty: no-args help, already printed by rich
            e.show()  # type: ignore[attr-defined]
        sys.exit(e.exit_code)  # type: ignore[attr-defined]
    except abort:
        sys.exit(130)
    except Exception as e:  # noqa: BLE001 - last resort: never a traceback on the console
        _crashed(e)
    # without standalone mode typer returns the exit code of `--help` (0) and of Ctrl-C (130)
    if code == 130:
        _interrupted()
    if isinstance(code, int) and code:
        sys.exit(code)


if __name__ == "__main__":
    main()
