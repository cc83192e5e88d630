"""`sharpen rm ...`: learned verifiers (reward models)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from sharpen.cli.app import app, console, pct, say

rm_app = typer.Typer(add_completion=False, no_args_is_help=True, help="Reward models: train, then score with them.")
app.add_typer(rm_app, name="rm")


def _rounds(text: Optional[str]) -> list[int]:
    from sharpen.errors import UserError

    if not text:
        return []
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise UserError(f"--round {text!r}: give round numbers, e.g. 1 or 1,2,3") from None


@rm_app.command("train")
def train(run_dir: Optional[Path] = typer.Argument(None, help="a run directory: its samples, labelled by the verifier"),
          out: Path = typer.Option(..., "--out", help="directory to write the reward model to (new or empty)"),
          pairs: Optional[Path] = typer.Option(None, "--pairs", help="JSONL of {prompt, chosen, rejected} pairs"),
          backbone: Optional[Path] = typer.Option(None, help="checkpoint under the head (default: the run's starting model)"),
          loss: str = typer.Option("pairwise", help="pairwise (Bradley-Terry) or pointwise (binary cross-entropy)"),
          round: Optional[str] = typer.Option(None, "--round", help="rounds whose samples to use, e.g. 1 or 1,2 (default: all)"),
          epochs: int = typer.Option(2), lr: float = typer.Option(1e-4), batch_size: int = typer.Option(32),
          heldout: float = typer.Option(0.2, help="share of prompts held out (split by prompt, never by sample)"),
          max_pairs_per_prompt: int = typer.Option(4),
          center: Optional[float] = typer.Option(None, help="reward centring coefficient (TRL's center_rewards_coefficient)"),
          label_noise: float = typer.Option(0.0, help="flip this share of training labels (a deliberately weak proxy)"),
          train_prompts: Optional[int] = typer.Option(None, help="train on at most N prompts (a weak proxy)"),
          lora: Optional[int] = typer.Option(None, help="LoRA rank on the backbone (real checkpoints); default: full"),
          kind: str = typer.Option("outcome", help="outcome (one score a completion) or prm (one score a step, Math-Shepherd labels)"),
          rollouts: int = typer.Option(8, help="prm: completions sampled from each step prefix"),
          label: str = typer.Option("soft", help="prm: soft (share of rollouts that reach the answer) or hard (any)"),
          seed: int = typer.Option(0), force: bool = typer.Option(False, "--force", help="replace OUT")) -> None:
    """Train an outcome or process reward model; print its held-out quality."""
    from sharpen.errors import UserError
    from sharpen.progress import RichProgress
    from sharpen.reward_models.train import RMTrainConfig, train_reward_model

    if kind == "prm":
        return _train_prm(run_dir, out, _rounds(round), rollouts, train_prompts, heldout, label, epochs, lr, batch_size,
                          seed, force)
    if kind != "outcome":
        raise UserError(f"--kind {kind!r}: use outcome or prm")
    if loss not in ("pairwise", "pointwise"):
        raise UserError(f"--loss {loss!r}: use pairwise or pointwise")
    cfg = RMTrainConfig(loss=loss, epochs=epochs, lr=lr, batch_size=batch_size, heldout=heldout,  # type: ignore[arg-type]
                        max_pairs_per_prompt=max_pairs_per_prompt, center=center, label_noise=label_noise,
                        train_prompts=train_prompts, lora_r=lora, seed=seed, rounds=_rounds(round))
    res = train_reward_model(cfg, out, run_dir=run_dir, pairs_file=pairs, backbone=backbone, force=force, log=say,
                             progress=RichProgress())
    t = Table(title=f"reward model {out} (held out: {res['data']['heldout_prompts']} prompts)")
    for col in ("", "pairwise accuracy", "AUROC"):
        t.add_column(col, justify="right")
    for name, key in (("before training", "heldout_before"), ("trained", "heldout")):
        t.add_row(name, pct(res[key].get("pairwise_accuracy")), pct(res[key].get("auroc")))
    console.print(t)
    say(f"wrote {out} ({res['train_seconds']:.0f} s of training, {res['data']['train_pairs']} pairs, "
        f"{res['data']['train_samples']} samples)")


def _train_prm(run_dir: Optional[Path], out: Path, rounds: list[int], rollouts: int, train_prompts: Optional[int],
               heldout: float, label: str, epochs: int, lr: float, batch_size: int, seed: int, force: bool) -> None:
    from sharpen.errors import UserError
    from sharpen.progress import RichProgress
    from sharpen.reward_models.prm_train import train_process_reward_model

    if run_dir is None:
        raise UserError("--kind prm: give RUN_DIR (its samples, and the policy that sampled them, make the step labels)")
    if len(rounds) > 1:
        raise UserError("--kind prm: give one --round (the policy of round r-1 rolls out from its steps)")
    res = train_process_reward_model(run_dir, out, r=rounds[0] if rounds else 1, rollouts=rollouts,
                                     train_prompts=train_prompts or 300, heldout=heldout, label=label, epochs=epochs,
                                     lr=lr, batch_size=batch_size, seed=seed, force=force, log=say, progress=RichProgress())
    t = Table(title=f"process reward model {out} (held out: {res['data']['heldout_samples']} samples)")
    for col in ("", "step accuracy", "step AUROC"):
        t.add_column(col, justify="right")
    for name, key in (("Math-Shepherd labels (train)", "labels_vs_truth"), ("before training", "heldout_before"),
                      ("trained", "heldout")):
        t.add_row(name, pct(res[key].get("step_accuracy")), pct(res[key].get("step_auroc")))
    console.print(t)
    say("solution AUROC by aggregate: " + ", ".join(f"{k} {pct(v)}" for k, v in res["solution_auroc"].items()))
    say(f"wrote {out} ({res['label_seconds']:.0f} s of rollouts, {res['train_seconds']:.0f} s of training)")
