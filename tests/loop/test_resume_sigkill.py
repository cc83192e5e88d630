"""A real multi-round run, SIGKILLed at random moments and resumed each time, ends with
the same metrics and bit-identical weights as an uninterrupted run."""
from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest


def _cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "sharpen", *args]


def _metrics(run: Path) -> list[dict]:
    out, r = [], 0
    while (run / f"rounds/{r}/metrics.json").exists():
        m = json.loads((run / f"rounds/{r}/metrics.json").read_text())
        m.pop("seconds")
        out.append(m)
        r += 1
    return out


def _sha(run: Path, r: int) -> str:
    return hashlib.sha256((run / f"rounds/{r}/checkpoint/model.safetensors").read_bytes()).hexdigest()


@pytest.mark.slow
def test_sigkill_at_random_points_then_resume_matches(tmp_path, weak_checkpoint):
    overrides = ["rounds=3", f"policy.path={weak_checkpoint}", "task.difficulty=[1, 2]", "task.width=2",
                 "sample.prompts_per_round=512", "sample.n=4", "eval.n=200", "eval.k=4",
                 "sample.max_new_tokens=12", "eval.max_new_tokens=12"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    straight = tmp_path / "straight"
    t0 = time.time()
    subprocess.run(_cmd("run", "star", *overrides, "--out", str(straight)), check=True, env=env, capture_output=True)
    duration = time.time() - t0  # kill moments scale with it, so the test bites on fast and slow machines

    killed = tmp_path / "killed"
    rng = random.Random(1234)
    kills = []

    def start(first: bool) -> subprocess.Popen:
        args = ("run", "star", *overrides, "--out", str(killed)) if first else ("resume", str(killed))
        return subprocess.Popen(_cmd(*args), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def done() -> list[int]:
        # a round being written sits in rounds/.tmp-*/ until its rename: not complete yet
        return sorted(int(p.parent.name) for p in killed.glob("rounds/*/metrics.json") if p.parent.name.isdigit())

    proc = start(first=True)
    # one kill during start-up, then one after each of rounds 0, 1, 2 has completed, each at a
    # random delay (scaled to this machine's speed) so kills land mid-sampling, mid-training,
    # mid-evaluation and mid-write
    for target in (None, 0, 1, 2):
        if target is not None:
            while target not in done() and proc.poll() is None:
                time.sleep(0.02)
        time.sleep(rng.uniform(0.0, 0.15) * duration)
        if proc.poll() is not None:
            break
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kills.append(done())
        proc = start(first=not (killed / "config.yaml").exists())
    assert proc.wait(600) == 0
    print(f"rounds complete at each of the {len(kills)} kills: {kills}")
    assert len(kills) >= 3, f"the run finished before enough kills: {kills}"
    assert _metrics(killed) == _metrics(straight)
    assert len(_metrics(straight)) == 4
    assert _sha(killed, 3) == _sha(straight, 3)
    assert not list(killed.rglob(".tmp-*"))
