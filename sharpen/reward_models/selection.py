"""Learned verifiers at inference time: `--select rm,rm_vote,prm --rm DIR [--rm DIR ...]`.

`rm` is best-of-N by the outcome RM's score (several outcome RMs: their mean); `rm_vote`
a majority vote in which each sample's vote weighs sigmoid(RM score); `prm` best-of-N by
the process RM's weakest step (min aggregation, Math-Shepherd's choice for best-of-N).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

from sharpen.errors import UserError
from sharpen.reward_models.model import META_FILE
from sharpen.types import Sample

LEARNED = ("rm", "rm_vote", "prm")


def _kind(path: str) -> str:
    meta = Path(path).expanduser() / META_FILE
    if not meta.is_file():
        raise UserError(f"--rm {path}: holds no reward model (no {META_FILE}); train one with `sharpen rm train`")
    return "process" if json.loads(meta.read_text()).get("kind") == "process" else "outcome"


def split_dirs(methods: Sequence[str], dirs: Sequence[str]) -> tuple[list[str], list[str]]:
    """(outcome RM dirs, process RM dirs), checked against what the methods need, before sampling."""
    kinds = {d: _kind(d) for d in dirs}
    outcome = [d for d in dirs if kinds[d] == "outcome"]
    process = [d for d in dirs if kinds[d] == "process"]
    if {"rm", "rm_vote"} & set(methods) and not outcome:
        raise UserError("--select rm/rm_vote: give an outcome reward model with --rm DIR (sharpen rm train)")
    if "prm" in methods and not process:
        raise UserError("--select prm: give a process reward model with --rm DIR (sharpen rm train --kind prm)")
    return outcome, process


def learned_scores(samples: list[Sample], methods: Sequence[str], dirs: Sequence[str]) -> dict[str, list[float]]:
    """{"rm": [...], "prm": [...]} for the samples, as the methods need them."""
    from sharpen.feedback.reward_model import RewardModelConfig, rm_scores
    from sharpen.reward_models.prm import ProcessRewardModel, aggregate

    outcome, process = split_dirs(methods, dirs)
    prompts, texts = [s.prompt.text for s in samples], [s.completion.text for s in samples]
    out: dict[str, list[float]] = {}
    if {"rm", "rm_vote"} & set(methods):
        out["rm"] = rm_scores(RewardModelConfig(paths=outcome), prompts, texts)
    if "prm" in methods:
        if len(process) > 1:
            raise UserError("--select prm: give one process reward model")
        prm = ProcessRewardModel.load(process[0], field="--rm")
        out["prm"] = [aggregate(s, "min") for s in prm.step_scores(prompts, texts)]
    return out
