"""The initial model's samples, kept for the whole run (Temporal Self-Rewarding's anchor).

Temporal Self-Rewarding fixes the rejected side of each pair to a low-scored
output of the *initial* model M0, so the chosen-rejected gap does not shrink as both
improve. Every round's training prompts are known in advance (a task's train batch is a
function of the round), so round 1, whose engine still holds M0's weights, samples the
prompts of every round once and writes them to `<run>/anchor.jsonl.gz`. Later rounds
and resumed runs read that file: the anchor never changes, whoever the policy became.
"""
from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

from sharpen.errors import UserError
from sharpen.rundir import atomic_write
from sharpen.seeds import derive_seed
from sharpen.types import Completion, Engine, Sample, SamplingParams

ANCHOR_FILE = "anchor.jsonl.gz"


def _rows(samples: list[Sample], r: int) -> list[dict[str, Any]]:
    return [{"round": r, "prompt_id": s.prompt.id, "index": s.index, "text": s.completion.text,
             "token_ids": s.completion.token_ids, "logprobs": s.completion.logprobs, "finished": s.completion.finished}
            for s in samples]


def anchor_samples(engine: Engine, task: Any, recipe: Any, params: SamplingParams, run_dir: Path, r: int,
                   samples: list[Sample], progress: Any) -> list[Sample]:
    """M0's samples of round r's training prompts (sampled at round 1, read back after)."""
    path = Path(run_dir) / ANCHOR_FILE
    n = recipe.sample.prompts_per_round
    if not path.exists():
        if r != 1:
            raise UserError(f"{path}: missing; the initial model's samples are drawn in round 1, so this run cannot "
                            "anchor round {r}: start a new run".replace("{r}", str(r)))
        rows = _rows(samples, 1)  # round 1 samples M0 itself
        later = {k: task.prompts(recipe.sample.split, n, round=k) for k in range(2, recipe.rounds + 1)}
        flat = [(k, p) for k, ps in later.items() for p in ps]
        if flat:
            with progress("anchor: initial model", len(flat)) as advance:
                groups = engine.generate([p.text for _, p in flat], params,
                                         [derive_seed(recipe.run.seed, "anchor", k, p.id) for k, p in flat], progress=advance)
            for (k, p), g in zip(flat, groups):
                rows += _rows([Sample(p, c, i) for i, c in enumerate(g)], k)
        blob = "\n".join(json.dumps(x) for x in rows) + "\n"
        atomic_write(path, gzip.compress(blob.encode(), mtime=0))
        return samples
    prompts = {p.id: p for p in task.prompts(recipe.sample.split, n, round=r)}
    out = []
    for line in gzip.decompress(path.read_bytes()).decode().splitlines():
        row = json.loads(line)
        if row["round"] == r and row["prompt_id"] in prompts:
            out.append(Sample(prompts[row["prompt_id"]], Completion(row["text"], row["token_ids"], row["logprobs"],
                                                                  row["finished"]), row["index"]))
    if not out:
        raise UserError(f"{path}: no initial-model samples for round {r} (rounds were raised after round 1?); start a new run")
    return out
