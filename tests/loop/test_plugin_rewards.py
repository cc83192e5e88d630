"""A TRL reward function and a verl compute_score, written for those libraries, drive a
1-round GRPO run unchanged: the rewards in samples.jsonl are what the function returns."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from sharpen import api
from sharpen.config import load_recipe
from sharpen.feedback.function import load_function
from sharpen.tasks import make_task

REPO = Path(__file__).resolve().parents[2]


def round_rows(out: Path) -> tuple[list[dict], dict]:
    """samples.jsonl of round 1 and each row's gold prompt (the task rebuilt from config.yaml)."""
    recipe = load_recipe(out / "config.yaml")  # also: a run's config.yaml with a function feedback reloads
    task = make_task(recipe.task)
    prompts = {p.id: p for p in task.prompts("train", recipe.sample.prompts_per_round, round=1)}
    rows = [json.loads(line) for line in (out / "rounds/1/samples.jsonl").read_text().splitlines()]
    return rows, prompts


@pytest.mark.parametrize("fn", ["tests.feedback.rewards_trl:accuracy_reward", "tests/feedback/rewards_verl.py:compute_score"])
def test_a_trl_and_a_verl_reward_drive_a_grpo_run(tmp_path, monkeypatch, weak_overrides, fn):
    monkeypatch.chdir(REPO)  # the module and the file path are relative to the working directory
    out = api.run("grpo", [*weak_overrides, f"feedback={{kind: function, fn: '{fn}'}}"], out=tmp_path / "run", log=lambda m: None)
    m = api.metrics(out)[1]
    assert m["train"]["steps"] > 0 and "function" in m["audit"]
    rows, prompts = round_rows(out)
    user_fn = load_function(fn)
    if "verl" in fn:
        want = [user_fn("arithmetic", r["completion"], prompts[r["prompt_id"]].answer)["score"] for r in rows]
        assert m["feedback"]["convention"] == "verl" and 0.0 <= m["feedback"]["acc"] <= 1.0  # verl's extra key, averaged
    else:
        want = user_fn(completions=[r["completion"] for r in rows], answer=[prompts[r["prompt_id"]].answer for r in rows])
        assert m["feedback"]["convention"] == "trl"
    assert [r["reward"] for r in rows] == want and [r["scores"]["function"] for r in rows] == want
    # the function's reward, not the verifier's: partial or format credit where the verifier gives 0
    assert any(0.0 < r["reward"] < 1.0 and r["correct"] is False for r in rows)
    assert any(r["reward"] == 1.0 and r["correct"] for r in rows)


def test_a_reward_that_raises_mid_run_is_one_error_line(capsys, monkeypatch, tmp_path, micro_overrides):
    from tests.conftest import run_cli
    from tests.test_bad_input import no_half_rounds, one_line_error

    (tmp_path / "bad.py").write_text("def reward(completions, **kwargs):\n    return [c['text'] for c in completions]\n")
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(capsys, monkeypatch, "run", "grpo", *micro_overrides, "feedback={kind: function, fn: 'bad.py:reward'}",
                           "--out", tmp_path / "run")
    one_line_error(code, err, "feedback.fn 'bad.py:reward'", "raised TypeError", "bad.py:2")
    no_half_rounds(tmp_path / "run")  # round 0 is complete and stays: the run resumes once the function is fixed
