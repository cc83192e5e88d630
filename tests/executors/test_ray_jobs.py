"""Whole runs as Ray tasks: a sweep over two grid points on the local cluster, each run in
its own directory, each equal to the same run done locally; compare's CSV keeps its shape."""
from __future__ import annotations

import csv

from sharpen import api


def _strip_seconds(m: dict) -> dict:
    return {k: v for k, v in m.items() if k != "seconds"}


def test_a_ray_sweep_runs_each_point_as_a_ray_task(tmp_path, weak_overrides, ray_cluster):
    logs: list[str] = []
    root = api.sweep("star", [*weak_overrides, "sample.n=2,4", "executor=ray"], out=tmp_path / "sweep", log=logs.append)
    assert any("2 runs submitted as Ray tasks" in line for line in logs)
    runs = sorted(p.name for p in root.iterdir() if p.is_dir())
    assert runs == ["sample.n=2", "sample.n=4"]
    for name in runs:
        assert (root / name / "config.yaml").exists() and (root / name / "rounds/1/metrics.json").exists()
    local = api.run("star", [*weak_overrides, "sample.n=4"], out=tmp_path / "local", log=lambda m: None)
    assert [_strip_seconds(m) for m in api.metrics(root / "sample.n=4")] == [_strip_seconds(m) for m in api.metrics(local)]
    table = list(csv.DictReader(open(root / "sweep.csv")))
    assert {r["recipe"] for r in table} == set(runs) and (root / "sweep.png").stat().st_size > 0
    assert list(table[0]) == ["recipe", "round", "split", "greedy_accuracy", "pass_at_k", "majority_accuracy", "k", "n",
                              "train_samples", "kept", "seconds"]
    # resuming the sweep finds every run complete and redoes nothing
    again: list[str] = []
    api.sweep("star", [*weak_overrides, "sample.n=2,4"], out=root, workers=1, log=again.append)
    assert sum("are complete" in line for line in again) == 2


def test_compare_on_ray_writes_the_same_csv_shape(tmp_path, weak_overrides, ray_cluster):
    overrides = [o for o in weak_overrides if not o.startswith(("rounds", "sample.prompts_per_round"))]
    local = api.compare(["star", "rest_em"], 96, [*overrides, "rounds=1"], out=tmp_path / "local", log=lambda m: None)
    remote = api.compare(["star", "rest_em"], 96, [*overrides, "rounds=1", "executor=ray"], out=tmp_path / "ray",
                         log=lambda m: None)
    a, b = list(csv.DictReader(open(local / "compare.csv"))), list(csv.DictReader(open(remote / "compare.csv")))
    assert list(a[0]) == list(b[0]) and len(a) == len(b) == 2 * 2 * 2  # recipes x rounds x splits
    strip = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    assert strip(a) == strip(b)
    assert (remote / "compare.png").stat().st_size > 0
