"""The loop on micro runs: run-directory shape, metrics.json shape, determinism, resume,
and a 1-round run of every built-in recipe."""
from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from sharpen import api
from sharpen.config import builtin_recipes
from sharpen.policy import Policy


def _strip_seconds(m: dict) -> dict:
    return {k: v for k, v in m.items() if k != "seconds"}


def _weights_sha(path) -> str:
    return hashlib.sha256((path / "model.safetensors").read_bytes()).hexdigest()


def test_micro_run_writes_the_designed_run_directory(tmp_path, weak_overrides):
    out = api.run("star", weak_overrides, out=tmp_path / "run", log=lambda m: None)
    assert (out / "config.yaml").exists()
    m0 = json.loads((out / "rounds/0/metrics.json").read_text())
    m1 = json.loads((out / "rounds/1/metrics.json").read_text())
    assert m0["round"] == 0 and m1["round"] == 1
    for split in ("eval", "holdout"):
        s = m1["splits"][split]
        assert {"greedy_accuracy", "pass_at_k", "majority_accuracy", "k", "n"} <= set(s)
        assert all(0 <= s[k] <= 1 for k in ("greedy_accuracy", "pass_at_k", "majority_accuracy"))
        assert s["n"] == 8 and s["k"] == 4
    assert {"samples", "kept", "loss"} <= set(m1["train"]) and m1["train"]["samples"] == 24 * 4
    assert {"sample", "train", "eval"} <= set(m1["seconds"])
    rows = [json.loads(l) for l in (out / "rounds/1/samples.jsonl").read_text().splitlines()]
    assert len(rows) == 96 and {"prompt", "completion", "reward", "correct"} <= set(rows[0])
    assert (out / "rounds/1/checkpoint/config.json").exists()
    page = (out / "report.html").read_text()
    assert "data:image/png;base64," in page and "greedy_accuracy" in page and "name: star" in page
    assert not list(out.rglob(".tmp-*"))


def test_same_seed_same_numbers_and_resume_matches_straight_run(tmp_path, weak_overrides):
    straight = api.run("star", [*weak_overrides, "rounds=2"], out=tmp_path / "a", log=lambda m: None)
    again = api.run("star", [*weak_overrides, "rounds=2"], out=tmp_path / "b", log=lambda m: None)
    first = api.run("star", weak_overrides, out=tmp_path / "c", log=lambda m: None)  # 1 round, then resume to 2
    resumed = api.resume(first, ["rounds=2"], log=lambda m: None)
    ref = [_strip_seconds(m) for m in api.metrics(straight)]
    assert len(ref) == 3
    assert [_strip_seconds(m) for m in api.metrics(again)] == ref
    assert [_strip_seconds(m) for m in api.metrics(resumed)] == ref
    sha = _weights_sha(straight / "rounds/2/checkpoint")
    assert _weights_sha(again / "rounds/2/checkpoint") == sha == _weights_sha(resumed / "rounds/2/checkpoint")


def test_a_complete_run_is_not_redone(tmp_path, weak_overrides):
    out = api.run("star", weak_overrides, out=tmp_path / "run", log=lambda m: None)
    before = (out / "rounds/1/metrics.json").read_text()
    logs: list[str] = []
    api.resume(out, log=logs.append)
    assert any("complete" in l for l in logs) and (out / "rounds/1/metrics.json").read_text() == before


@pytest.mark.parametrize("name", sorted(builtin_recipes()))
def test_every_builtin_recipe_runs_one_micro_round(tmp_path, weak_overrides, micro_overrides, name):
    # code recipes run on the untrained tiny model: its samples are scored in the sandbox, and
    # since it solves none, it trains on the gold completions so the round still takes steps
    overrides = [*micro_overrides, "build={kind: reference}"] if name.endswith("_code") else weak_overrides
    if name == "star_smollm2":  # the real-checkpoint recipe's parts (LoRA, word problems) on the tiny model
        overrides = [*micro_overrides, "build={kind: reference}", "policy.prompt_format=raw"]
    if name == "ttrl_smollm2":  # its parts (LoRA, vote, GRPO) on the weak tiny model and its arithmetic
        overrides = ["task={name: arithmetic}", *weak_overrides, "policy.prompt_format=raw"]
    if name in ("lmsi", "co_reward"):  # the weak model's votes never reach these recipes' confidence bar
        overrides = [*overrides, "feedback.min_agreement=0"]
    out = api.run(name, overrides, out=tmp_path / name, log=lambda m: None)
    m = api.metrics(out)
    assert [x["round"] for x in m] == [0, 1]
    assert m[1]["train"]["samples"] > 0
    assert m[1]["train"]["steps"] > 0 and math.isfinite(m[1]["train"]["loss"])
    if "build={kind: reference}" not in overrides:  # every sampled round audits its training signal
        audit = m[1]["audit"]
        assert audit and all({"precision", "recall", "auroc", "auroc_within_prompt"} <= set(a) for a in audit.values())
    start = load_file(Path(m[0]["policy"]) / "model.safetensors")
    after = Policy.load(out / "rounds/1/checkpoint").merged_state_dict()  # a LoRA checkpoint holds the adapter
    changed = [k for k, v in start.items() if not torch.allclose(v, after[k].float())]
    assert changed, "a round trained but no weight changed"


def test_supervised_control_runs_next_to_star_in_two_processes(tmp_path, weak_overrides):
    from sharpen.config import load_recipe

    rec = load_recipe("star", weak_overrides)
    ctl = api.control_recipe(rec)
    assert ctl.build.kind == "reference" and ctl.objective == rec.objective and ctl.sample == rec.sample
    runs = api.run_parallel({"star": (rec, tmp_path / "star"), "control": (ctl, tmp_path / "control")},
                            workers=2, log=lambda m: None)
    star, control = api.metrics(runs["star"]), api.metrics(runs["control"])
    assert star[0]["splits"] == control[0]["splits"]  # same starting policy, same evaluation draws
    from sharpen.tasks import make_task

    distinct = len({p.id for p in make_task(rec.task).prompts("train", 24, round=1)})
    assert control[1]["train"]["kept"] == distinct  # one gold completion per distinct prompt of the round
    assert star[1]["train"]["samples"] == 96  # 24 prompts x 4
    assert control[1]["train"]["samples"] == 24  # the control samples nothing: one empty row per prompt drawn
    assert control[1]["train"]["prompts"] == star[1]["train"]["prompts"]  # ... on the same prompts


@pytest.mark.parametrize("how, name", [("gzip", "samples.jsonl.gz"), ("none", None)])
def test_samples_can_be_gzipped_or_dropped(tmp_path, weak_overrides, how, name):
    import gzip

    plain = api.run("star", weak_overrides, out=tmp_path / "plain", log=lambda m: None)
    out = api.run("star", [*weak_overrides, f"run.samples={how}"], out=tmp_path / how, log=lambda m: None)
    files = {p.name for p in (out / "rounds/1").iterdir()}
    assert "samples.jsonl" not in files and (name in files if name else not any(f.startswith("samples") for f in files))
    if name:
        assert gzip.decompress((out / "rounds/1" / name).read_bytes()) == (plain / "rounds/1/samples.jsonl").read_bytes()
    assert [_strip_seconds(m) for m in api.metrics(out)] == [_strip_seconds(m) for m in api.metrics(plain)]
