"""Commands that measure a checkpoint without training it: eval (with --select) and scaling."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer
from rich.table import Table

from sharpen.cli.app import SELECT_METHODS, say, pct, app, console
from sharpen.errors import UserError


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
          seed: int = typer.Option(0),
          rm: Optional[list[str]] = typer.Option(None, "--rm", help="reward model directories for --select rm, rm_vote, prm "
                                                 "(sharpen rm train; repeat for an ensemble or a PRM)"),
          as_json: bool = typer.Option(False, "--json", help='print one JSON object, {"splits": {"<split>": {...}}}, '
                                       "with metrics.json's keys (and \"select\": {method: accuracy} with --select); "
                                       "logs go to stderr")) -> None:
    """Evaluate a checkpoint on a task's held-out splits (an instruct model's chat template is applied);
    with --select, the accuracy of inference-time selection from N samples per prompt."""
    import contextlib
    import json
    import sys

    from sharpen import api
    from sharpen.progress import RichProgress

    task_cfg, policy_cfg = eval_config(task, overrides or [])
    if rm and not select:
        raise UserError("--rm: reward models are used by --select rm, rm_vote or prm; add --select")
    if n is not None and not select:
        raise UserError(f"--n {n}: --n is the samples per prompt for --select; prompts per split is --prompts")
    quiet = contextlib.redirect_stdout(sys.stderr) if as_json else contextlib.nullcontext()
    if select:
        samples = n or 16
        with quiet:
            res = api.select_eval(checkpoint, task_cfg, select, n=samples, prompts=prompts, seed=seed, engine=engine,
                                  max_new_tokens=max_new_tokens, policy=policy_cfg, progress=RichProgress(), rm=rm or [])
        if as_json:
            print(json.dumps({"splits": {split: {"n": samples, "prompts": prompts,
                                                 "select": {m: curve[samples] for m, curve in by_method.items()}}
                                         for split, by_method in res.items()}}))
            return
        t = Table(title=f"{checkpoint} on {task}: selection from N={samples} samples per prompt")
        for col in ("split", "method", f"accuracy@{samples}"):
            t.add_column(col, justify="right")
        for split, by_method in res.items():
            for method, curve in by_method.items():
                t.add_row(split, method, pct(curve[samples]))
        console.print(t)
        return
    with quiet:
        res = api.evaluate(checkpoint, task_cfg, n=prompts, k=k, seed=seed, engine=engine, max_new_tokens=max_new_tokens,
                           policy=policy_cfg, progress=RichProgress())
    if as_json:
        print(json.dumps({"splits": res}))
        return
    t = Table(title=f"{checkpoint} on {task}")
    for col in ("split", "greedy", f"pass@{k}", f"maj@{k}", "n"):
        t.add_column(col, justify="right")
    for split, s in res.items():
        t.add_row(split, pct(s["greedy_accuracy"]), pct(s.get("pass_at_k")), pct(s.get("majority_accuracy")), str(s["n"]))
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
            seed: int = typer.Option(0),
            rm: Optional[list[str]] = typer.Option(None, "--rm", help="reward model directories for rm, rm_vote, prm")) -> None:
    """Test-time scaling: accuracy of each selection method against N samples per prompt; table, CSV and PNG."""
    from sharpen import api
    from sharpen.progress import RichProgress

    task_cfg, policy_cfg = eval_config(task, overrides or [])
    res = api.scaling(checkpoint, task_cfg, methods, max_n=max_n, prompts=prompts, split=split, out=out, seed=seed,
                      temperature=temperature, engine=engine, max_new_tokens=max_new_tokens, policy=policy_cfg,
                      progress=RichProgress(), rm=rm or [])
    curves = res["curves"]
    sizes = sorted({s for c in curves.values() for s in c})
    t = Table(title=f"{checkpoint} on {task} {split} ({prompts} prompts): accuracy by N")
    for col in ("method", *(f"N={s}" for s in sizes)):
        t.add_column(col, justify="right")
    for method, curve in curves.items():
        t.add_row("pass@N (verifier)" if method == "verifier" else method, *(pct(curve.get(s)) for s in sizes))
    console.print(t)
    say(f"wrote {res['out'] / 'scaling.csv'} and {res['out'] / 'scaling.png'}")


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
