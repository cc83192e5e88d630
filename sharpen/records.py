"""What a run writes about itself besides checkpoints: samples.jsonl, metrics.json, the
one-line round summary, and the recipe check that keeps one run directory one experiment."""
from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import yaml

from sharpen.config import Recipe, apply_overrides, validate_recipe
from sharpen.overrides import masked_override, secret_override_keys
from sharpen.errors import UserError
from sharpen.rundir import RunDir
from sharpen.types import Scored


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


def write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=2) + "\n")


def summary(m: dict[str, Any]) -> str:
    """`round 2 | eval: greedy 51.0% pass@8 ... | holdout: ... | kept 812`"""
    parts = [f"round {m['round']}"]
    for split, s in m["splits"].items():
        txt = f"{split}: greedy {s['greedy_accuracy']:.1%}"
        if "pass_at_k" in s:
            txt += f" pass@{s['k']} {s['pass_at_k']:.1%} maj@{s['k']} {s['majority_accuracy']:.1%}"
        parts.append(txt)
    if m["train"]:
        parts.append(f"kept {m['train'].get('kept')}")
    return " | ".join(parts)


def check_same_recipe(rundir: RunDir, recipe: Recipe) -> None:
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


# where and how long a run computes, never what; and the keys, which config.yaml never holds
RESUME_KEYS = ("rounds", "executor", "run.threads", "ray", *secret_override_keys())


def load_run_recipe(path: str | Path, overrides: list[str] | None = None) -> Recipe:
    """The recipe a run directory was started with (for `sharpen resume`)."""
    rundir = RunDir(path)
    if not rundir.config_path.exists():
        raise UserError(f"{rundir.path}: not a run directory (no config.yaml); start one with `sharpen run`")
    data = yaml.safe_load(rundir.config_path.read_text())
    allowed = list(overrides or [])
    for o in allowed:
        key = o.split("=", 1)[0]
        if not any(key == k or key.startswith(k + ".") for k in RESUME_KEYS):
            raise UserError(f"override {masked_override(o)!r}: a resumed run keeps its recipe; only rounds=N, "
                            "run.threads=N, executor, ray.* and the API keys (engine.api_key, feedback.api_key) may change")
    apply_overrides(data, allowed)
    return validate_recipe(data, str(rundir.config_path))
