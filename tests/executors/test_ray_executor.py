"""executor: ray on a local 2-CPU cluster: the same metrics.json and final weights as a
local run, and a worker killed mid-round changes nothing but the time."""
from __future__ import annotations

import hashlib
import os
import re
import signal
from contextlib import contextmanager

import pytest

from sharpen import api

# 24 prompts in batches of 8: three sampling shards over two workers, two eval shards per split
SHARDED = ["sample.batch_size=8", "eval.n=16", "ray.num_workers=2"]


def _strip_seconds(m: dict) -> dict:
    return {k: v for k, v in m.items() if k != "seconds"}


def _weights_sha(path) -> str:
    return hashlib.sha256((path / "model.safetensors").read_bytes()).hexdigest()


def _same_run(a, b, rounds: int) -> None:
    ma, mb = api.metrics(a), api.metrics(b)
    assert len(ma) == rounds + 1
    assert [_strip_seconds(m) for m in mb] == [_strip_seconds(m) for m in ma]
    last = f"rounds/{rounds}"
    assert _weights_sha(b / last / "checkpoint") == _weights_sha(a / last / "checkpoint")
    assert (b / last / "samples.jsonl").read_bytes() == (a / last / "samples.jsonl").read_bytes()


def test_ray_run_equals_local_run(tmp_path, weak_overrides, ray_cluster):
    overrides = [*weak_overrides, *SHARDED, "rounds=2"]
    local = api.run("star", overrides, out=tmp_path / "local", log=lambda m: None)
    logs: list[str] = []
    remote = api.run("star", [*overrides, "executor=ray"], out=tmp_path / "ray", log=logs.append)
    assert any("ray: 2 workers" in line for line in logs)
    _same_run(local, remote, rounds=2)
    # a driver killed after round 1 resumes on Ray (its replicas load the round-1 checkpoint) to the same round 2
    first = api.run("star", [*weak_overrides, *SHARDED, "executor=ray"], out=tmp_path / "resumed", log=lambda m: None)
    resumed = api.resume(first, ["rounds=2", "ray.num_workers=1"], log=lambda m: None)
    _same_run(local, resumed, rounds=2)


class KillOnFirstSample:
    """A progress factory that SIGKILLs every worker when the first sampling shard returns
    (the pool has just fed the next shard to a worker, so at least one shard is in flight)."""

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids
        self.killed = False

    @contextmanager
    def __call__(self, description: str, total: int):
        def advance(k: int) -> None:
            if description == "sampling" and not self.killed:
                self.killed = True
                for pid in self.pids:
                    os.kill(pid, signal.SIGKILL)
        yield advance


def test_a_worker_killed_mid_round_leaves_the_round_unchanged(tmp_path, weak_overrides, ray_cluster):
    overrides = [*weak_overrides, *SHARDED]
    local = api.run("star", overrides, out=tmp_path / "local", log=lambda m: None)
    logs: list[str] = []
    progress = KillOnFirstSample([])

    def log(line: str) -> None:
        logs.append(line)
        if m := re.search(r"ray: \d+ workers \(pids ([\d, ]+)\)", line):
            progress.pids.extend(int(p) for p in m.group(1).split(", "))

    remote = api.run("star", [*overrides, "executor=ray"], out=tmp_path / "ray", log=log, progress=progress)
    assert progress.killed and len(progress.pids) == 2
    redone = [line for line in logs if "redone" in line]
    assert redone and all(re.search(r"died during sampling shard \d+ .*; shard \d+ redone", r) for r in redone)
    _same_run(local, remote, rounds=1)


@pytest.mark.slow
def test_a_code_round_scores_on_the_workers_and_equals_local(tmp_path, micro_overrides, ray_cluster):
    # 48 prompts x 2 = 96 completions: over the driver-side cutoff, so the sandbox runs on the workers
    # (an untrained model: it solves none and keeps nothing, but the whole round runs sharded)
    overrides = [*micro_overrides, "sample.prompts_per_round=48", "sample.batch_size=16"]
    local = api.run("star_code", overrides, out=tmp_path / "local", log=lambda m: None)
    remote = api.run("star_code", [*overrides, "executor=ray"], out=tmp_path / "ray", log=lambda m: None)
    m = api.metrics(remote)[1]
    assert m["train"]["samples"] == 96
    import gzip

    rows = gzip.decompress((remote / "rounds/1/samples.jsonl.gz").read_bytes())
    assert rows == gzip.decompress((local / "rounds/1/samples.jsonl.gz").read_bytes())
    assert [_strip_seconds(x) for x in api.metrics(remote)] == [_strip_seconds(x) for x in api.metrics(local)]
