"""Test-time training (TTRL): `sample.split=holdout` trains on held-out questions, never their answers."""
from __future__ import annotations

import json

import pytest

from sharpen import api
from sharpen.config import load_recipe
from sharpen.errors import UserError
from sharpen.tasks import make_task


def test_holdout_questions_are_trained_on_and_eval_stays_unseen(tmp_path, weak_overrides):
    out = api.run("ttrl", [*weak_overrides, "sample.split=holdout", "sample.prompts_per_round=8", "eval.n=8"],
                  out=tmp_path / "tt", log=lambda m: None)
    rows = [json.loads(l) for l in (out / "rounds/1/samples.jsonl").read_text().splitlines()]
    task = make_task({"name": "arithmetic", "difficulty": [1, 2], "width": 2})
    holdout = {p.id for p in task.prompts("holdout", 8)}
    evalset = {p.id for p in task.prompts("eval", 8)}
    assert {r["prompt_id"] for r in rows} == holdout  # exactly the held-out questions evaluated
    assert not holdout & evalset


@pytest.mark.parametrize("feedback,build", [("verifier", "groups"), ("{kind: combine, parts: [vote, verifier]}", "groups"),
                                            ("vote", "{kind: spin_pairs}")])
def test_answers_of_held_out_questions_are_refused(feedback, build):
    with pytest.raises(UserError, match="sample.split"):
        load_recipe("ttrl", ["sample.split=holdout", f"feedback={feedback}", f"build={build}"])


def test_label_free_feedback_may_train_on_held_out_questions():
    for name in ("ttrl", "co_reward", "intuitor", "self_rewarding"):
        assert load_recipe(name, ["sample.split=holdout"]).sample.split == "holdout"
