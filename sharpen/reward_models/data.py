"""Reward-model data: a run's samples labelled by its verifier, or a user's pairs file.

Labels come from samples.jsonl's `correct` (the ground-truth check every round records),
so an RM trained here learns the verifier's judgement from the policy's own
distribution. The held-out split is by prompt, never by sample: two samples of one prompt
share most of their text, and a split by sample would measure memorised prompts.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from sharpen.errors import UserError, decode_text, user_file
from sharpen.tasks.base import json_object


@dataclass(frozen=True)
class Labelled:
    """One completion with its verifier label."""

    prompt_id: str
    prompt: str
    completion: str
    label: bool


@dataclass(frozen=True)
class Pair:
    """A preference: `chosen` is better than `rejected` for `prompt` (by `margin`, optional)."""

    prompt_id: str
    prompt: str
    chosen: str
    rejected: str
    margin: float = 0.0


def sample_files(run_dir: Path, rounds: list[int] | None) -> list[Path]:
    """samples.jsonl(.gz) of the given rounds (default: every round that kept its samples)."""
    root = Path(run_dir) / "rounds"
    if not (Path(run_dir) / "config.yaml").is_file():
        raise UserError(f"{run_dir}: not a run directory (no config.yaml); give a directory `sharpen run` made")
    found = {int(d.name): d for d in root.iterdir() if d.name.isdigit()} if root.is_dir() else {}
    wanted = rounds if rounds else sorted(found)
    out = []
    for r in wanted:
        d = found.get(r)
        files = [f for f in (d / "samples.jsonl", d / "samples.jsonl.gz") if d is not None and f.is_file()]
        if files:
            out.append(files[0])
        elif rounds:
            raise UserError(f"--round {r}: {run_dir} has no samples for round {r} (run.samples=none, or not run yet)")
    if not out:
        raise UserError(f"{run_dir}: no round kept its samples (samples.jsonl); run with run.samples=jsonl")
    return out


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    data = path.read_bytes()
    text = decode_text(gzip.decompress(data) if path.suffix == ".gz" else data, path, "samples file")
    for k, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            yield k, line


def load_samples(run_dir: Path, rounds: list[int] | None = None) -> list[Labelled]:
    """Every distinct (prompt, completion) of those rounds with its label; a completion seen
    twice keeps its first label (a verifier gives the same one)."""
    seen: dict[tuple[str, str], Labelled] = {}
    for path in sample_files(run_dir, rounds):
        for k, line in _lines(path):
            row = json.loads(line)
            label = row.get("correct")
            if label is None:
                raise UserError(f"{path}:{k}: no ground-truth label (`correct` is null: the task has no verifier); "
                                "train on a run of a task with answers, or give --pairs")
            key = (str(row["prompt_id"]), str(row["completion"]))
            seen.setdefault(key, Labelled(key[0], str(row["prompt"]), key[1], bool(label)))
    return list(seen.values())


def read_pairs(path: str | Path) -> list[Pair]:
    """A JSONL file of {"prompt", "chosen", "rejected"} (optional "margin"), checked line by line."""
    p = user_file(path, "pairs file", "give a JSONL file of {prompt, chosen, rejected}", field="--pairs")
    pairs = []
    for k, line in _lines(p):
        where = f"{p}:{k}"
        row = json_object(line, where, '{"prompt": ..., "chosen": ..., "rejected": ...}')
        for name in ("prompt", "chosen", "rejected"):
            if not isinstance(row.get(name), str):
                raise UserError(f"{where}: {name}: missing or not text; every line needs prompt, chosen and rejected")
        margin = row.get("margin", 0.0)
        if not isinstance(margin, (int, float)) or isinstance(margin, bool):
            raise UserError(f"{where}: margin: {margin!r} is not a number")
        pairs.append(Pair(_prompt_id(row["prompt"]), row["prompt"], row["chosen"], row["rejected"], float(margin)))
    if not pairs:
        raise UserError(f"{p}: no pairs; one JSON object a line")
    return pairs


def _prompt_id(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def is_heldout(prompt_id: str, fraction: float, seed: int) -> bool:
    """A fixed `fraction` of prompts, by a hash of (seed, id): the same prompts whatever else changes."""
    h = hashlib.sha256(f"{seed}:{prompt_id}".encode()).digest()
    return int.from_bytes(h[:8], "big") / 2**64 < fraction


def pairs_from_samples(samples: list[Labelled], max_per_prompt: int, rng: random.Random) -> list[Pair]:
    """Right vs wrong completions of one prompt, at most `max_per_prompt` pairs a prompt."""
    by_prompt: dict[str, list[Labelled]] = {}
    for s in samples:
        by_prompt.setdefault(s.prompt_id, []).append(s)
    out = []
    for pid in sorted(by_prompt):
        good = [s for s in by_prompt[pid] if s.label]
        bad = [s for s in by_prompt[pid] if not s.label]
        combos = [(g, b) for g in good for b in bad]
        for g, b in rng.sample(combos, min(max_per_prompt, len(combos))):
            out.append(Pair(pid, g.prompt, g.completion, b.completion))
    return out


def with_label_noise(samples: list[Labelled], p: float, rng: random.Random) -> list[Labelled]:
    """Each label flipped with probability `p` (Coste et al. trained proxies with 25%)."""
    return [Labelled(s.prompt_id, s.prompt, s.completion, s.label != (rng.random() < p)) for s in samples]
