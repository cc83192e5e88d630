"""Monitors and guards in micro runs of the loop: the default set's stats in metrics.json,
the reward-hacking guard stopping a length-gamed run, the forgetting guard rolling back to
its best round (and a resume replaying it exactly), TensorBoard event files, and a killed
B-STaR run resuming to the same temperatures and thresholds."""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sharpen import api, loop

HERE = Path(__file__).resolve().parent
FAST = ["sample.max_new_tokens=12", "eval.max_new_tokens=12", "task.difficulty=[1, 2]", "task.width=2",
        "sample.prompts_per_round=24", "sample.n=4", "eval.n=40", "eval.k=0"]


def _quiet(m: str) -> None:
    pass


def _strip(ms: list[dict]) -> list[dict]:
    return [{k: v for k, v in m.items() if k != "seconds"} for m in ms]


def _sha(run: Path, r: int) -> str:
    return hashlib.sha256((run / f"rounds/{r}/checkpoint/model.safetensors").read_bytes()).hexdigest()


def test_default_monitors_write_their_stats_and_a_terminal_line(tmp_path, weak_overrides):
    logs: list[str] = []
    out = api.run("star", weak_overrides, out=tmp_path / "run", log=logs.append)
    m = api.metrics(out)[1]
    mon = m["monitors"]
    assert {"pass_at_k", "distinct_correct_per_prompt", "distinct_1", "distinct_2", "answer_entropy"} <= set(mon["exploration"])
    assert mon["exploration"]["k"] == 4 and 0 <= mon["exploration"]["pass_at_k"] <= 1
    assert mon["exploitation"]["precision"] == 1.0  # the verifier keeps only correct samples
    assert 0 <= mon["balance"]["balance_score"] <= 1 and mon["balance"]["n_star"] == 8
    assert mon["data_yield"]["kept_per_prompt"] == pytest.approx(m["train"]["kept"] / m["train"]["prompts"])
    assert {"loss", "response_tokens"} <= set(mon["training"])
    assert "reward_hacking" not in mon and m["decisions"] == []  # the verifier is no proxy
    assert any(line.startswith("round 1 monitors | pass@4") for line in logs)


def test_reward_hacking_guard_stops_a_run_on_a_length_proxy(tmp_path, weak_checkpoint):
    fn = HERE.parent / "monitor" / "rewards_long.py"
    overrides = [*FAST, f"policy.path={weak_checkpoint}", "rounds=3", f"feedback={{kind: function, fn: '{fn}:longer'}}",
                 "build={kind: best_of_n, k: 1}", "objective.lr=3e-3", "objective.epochs=2",
                 "monitors=[{kind: reward_hacking, action: stop}]"]
    logs: list[str] = []
    out = api.run("star", overrides, out=tmp_path / "run", log=logs.append)
    ms = api.metrics(out)
    last = ms[-1]
    assert len(ms) < 4, "the guard did not stop the run"
    (d,) = last["decisions"]
    assert d["monitor"] == "reward_hacking" and d["action"] == "stop" and "rose" in d["reason"]
    rh = last["monitors"]["reward_hacking"]
    assert rh["flagged"] and rh["proxy_rise"] > 0 and rh["greedy_fall"] > 0
    assert any(line.startswith("stopping after round") for line in logs)
    again: list[str] = []
    api.resume(out, ["rounds=4"], log=again.append)  # a stopped run stays stopped
    assert len(api.metrics(out)) == len(ms) and any("stopped at round" in line for line in again)


FORGET = ["task.ops=[add]", "build={kind: reference}", "objective.lr=3e-3", "objective.epochs=4",
          "monitors=[{kind: forgetting, anchor: {name: arithmetic, ops: [mul], difficulty: [1, 2], width: 2}, "
          "n: 40, max_new_tokens: 12, margin: 0.05}]"]


def test_forgetting_guard_rolls_back_to_its_best_round_and_resume_replays_it(tmp_path, weak_checkpoint, monkeypatch):
    # trained on addition (gold completions, a high lr) while anchored on multiplication
    loaded: list[str] = []
    real = loop.load_policy
    monkeypatch.setattr(loop, "load_policy", lambda rec, path, r=0: (loaded.append(str(path)), real(rec, path, r))[1])
    overrides = [*FAST, f"policy.path={weak_checkpoint}", *FORGET]
    straight = api.run("star", [*overrides, "rounds=3"], out=tmp_path / "straight", log=_quiet)
    ms = api.metrics(straight)
    anchor = [m["monitors"]["forgetting"]["anchor_accuracy"] for m in ms]
    assert anchor[0] > 0.1 and anchor[1] < anchor[0] - 0.05
    d = ms[1]["decisions"][0]
    assert d["action"] == "rollback" and d["to_round"] == 0 and d["monitor"] == "forgetting"
    # round 2 started from round 0's weights (the base), not round 1's
    assert loaded[:2] == [str(weak_checkpoint), str(weak_checkpoint)]
    assert not any("rounds/1/checkpoint" in p for p in loaded)
    loaded.clear()
    part = api.run("star", [*overrides, "rounds=1"], out=tmp_path / "resumed", log=_quiet)
    api.resume(part, ["rounds=2"], log=_quiet)
    api.resume(part, ["rounds=3"], log=_quiet)
    assert not any("rounds/1/checkpoint" in p for p in loaded)
    assert _strip(api.metrics(part)) == _strip(ms)
    assert _sha(part, 3) == _sha(straight, 3)


def test_tensorboard_event_files_hold_round_and_step_metrics(tmp_path, weak_overrides):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = api.run("star", [*weak_overrides, "rounds=2", "tracking=tensorboard"], out=tmp_path / "run", log=_quiet)
    ea = EventAccumulator(str(out / "tb"))
    ea.Reload()
    tags = set(ea.Tags()["scalars"])
    assert {"splits/eval/greedy_accuracy", "splits/holdout/pass_at_k", "train/loss", "monitors/exploration/pass_at_k",
            "monitors/balance/balance_score", "step/loss", "step/lr", "step/grad_norm"} <= tags
    ms = api.metrics(out)
    greedy = [e.value for e in ea.Scalars("splits/eval/greedy_accuracy")]
    assert [e.step for e in ea.Scalars("splits/eval/greedy_accuracy")] == [0, 1, 2]
    assert greedy == pytest.approx([m["splits"]["eval"]["greedy_accuracy"] for m in ms])
    steps = [e.step for e in ea.Scalars("step/loss")]
    assert steps == list(range(ms[1]["train"]["steps"] + ms[2]["train"]["steps"]))  # one global step count


def test_killed_b_star_run_resumes_to_the_same_choices(tmp_path, weak_checkpoint):
    overrides = [*FAST, f"policy.path={weak_checkpoint}", "rounds=2", "eval.n=8", "adapt.probe=8"]
    straight = api.run("b_star", overrides, out=tmp_path / "straight", log=_quiet)
    killed = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE.parents[1]), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-m", "sharpen", "run", "b_star", *overrides, "--out", str(killed)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while not (killed / "rounds/1/metrics.json").exists() and proc.poll() is None:
        time.sleep(0.02)
    proc.kill()  # SIGKILL during round 2 (its probe, sampling or training)
    proc.wait()
    assert not (killed / "rounds/2/metrics.json").exists(), "the run finished before the kill"
    api.resume(killed, log=_quiet)
    ms, ref = api.metrics(killed), api.metrics(straight)
    assert [m["adapt"]["temperature"] for m in ms[1:]] == [m["adapt"]["temperature"] for m in ref[1:]]
    assert _strip(ms) == _strip(ref)
    assert _sha(killed, 2) == _sha(straight, 2)


def test_exploration_probe_measures_fixed_prompts_at_a_fixed_temperature(tmp_path, weak_overrides):
    probe = "monitors=[{kind: exploration_probe, temperature: 1.0, probe: 6, k: 4, max_new_tokens: 12}]"
    out = api.run("star", [*weak_overrides, probe], out=tmp_path / "run", log=_quiet)
    ms = api.metrics(out)
    for m in ms:  # round 0 too: the starting policy's exploration is the baseline
        p = m["monitors"]["exploration_probe"]
        assert p["prompts"] == 6 and p["k"] == 4 and p["temperature"] == 1.0 and 0 <= p["pass_at_k"] <= 1
    assert ms[0]["monitors"]["exploration_probe"] != ms[1]["monitors"]["exploration_probe"]  # the trained policy differs
