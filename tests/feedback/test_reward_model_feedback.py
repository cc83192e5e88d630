"""`feedback: reward_model`: one RM or an ensemble scores samples; the verifier only labels them."""
from __future__ import annotations

import json

import pytest

from sharpen.config import load_recipe
from sharpen.errors import UserError
from sharpen.feedback.reward_model import RewardModelConfig, reward_model
from sharpen.reward_models.ensemble import aggregate as ensemble
from sharpen.reward_models.model import RewardModel
from tests.conftest import run_cli


@pytest.fixture(scope="module")
def rm_dirs(tmp_path_factory, tiny_checkpoint):
    """Two members with different random heads on the tiny model."""
    out = []
    for seed in (0, 1):
        d = tmp_path_factory.mktemp(f"rm{seed}")
        RewardModel.from_backbone(tiny_checkpoint, "raw", seed=seed).save(d)
        out.append(d)
    return out


def test_ensemble_aggregates():
    scores = [[1.0, 0.0], [3.0, 0.0]]
    assert ensemble(scores, "mean", 0.5) == [2.0, 0.0]
    assert ensemble(scores, "wco", 0.5) == [1.0, 0.0]
    assert ensemble(scores, "uwo", 0.5) == [2.0 - 0.5 * 1.0, 0.0]  # population variance of (1, 3) is 1


def test_scores_are_the_members_and_the_verifier_only_labels(rm_dirs, fake_ctx, make_samples):
    samples = make_samples({"q": ("1", ["1", "2", "3"])})
    cfg = RewardModelConfig(paths=[str(d) for d in rm_dirs], aggregate="wco")
    rated = reward_model(samples, cfg, fake_ctx())
    texts = ([x.prompt.text for x in samples], [x.completion.text for x in samples])
    members = [RewardModel.load(d).score(*texts) for d in rm_dirs]
    assert [s.reward for s in rated.scored] == pytest.approx([min(a, b) for a, b in zip(*members)], abs=1e-6)
    assert [s.correct for s in rated.scored] == [True, False, False]
    assert rated.stats["members"] == 2 and 0 <= rated.stats["rm_auroc"] <= 1


def test_bad_configs_are_one_line(rm_dirs, tmp_path, tiny_checkpoint):
    for overrides, needle in [([f"feedback.path={rm_dirs[0]}", "feedback.ensemble.k=3"], "give one of"), ([f"feedback.path={tmp_path}"], "holds no reward model"),
                              ([f"feedback.path={rm_dirs[0]}", f"feedback.paths=[{rm_dirs[1]}]"], "give one of")]:
        with pytest.raises(UserError) as err:
            load_recipe("grpo", ["feedback.kind=reward_model", *overrides])
        assert needle in str(err.value) and "\n" not in str(err.value)


def test_members_with_different_tokenizers_are_refused(rm_dirs, tmp_path, fake_ctx, make_samples):
    other = tmp_path / "other"
    rm = RewardModel.load(rm_dirs[1])
    rm.tokenizer.add_tokens(["<new>"])
    rm.save(other)
    with pytest.raises(UserError, match="another tokenizer") as err:  # at load time: before any run directory exists
        load_recipe("grpo", ["feedback.kind=reward_model", f"feedback.paths=[{rm_dirs[0]},{other}]"])
    assert "\n" not in str(err.value) and "feedback.paths" in str(err.value)


def test_a_grpo_round_trains_on_the_rm(capsys, monkeypatch, tmp_path, rm_dirs, weak_overrides):
    run = tmp_path / "run"
    code, _, err = run_cli(capsys, monkeypatch, "run", "grpo", *weak_overrides, "feedback.kind=reward_model",
                           f"feedback.paths=[{rm_dirs[0]}, {rm_dirs[1]}]", "feedback.aggregate=uwo", "--out", run)
    assert code == 0, err
    rows = [json.loads(x) for x in (run / "rounds" / "1" / "samples.jsonl").read_text().splitlines()]
    assert all("reward_model" in r["scores"] and r["reward"] == r["scores"]["reward_model"] for r in rows)
    assert any(r["reward"] not in (0.0, 1.0) for r in rows)  # the RM's score, not the verifier's
    metrics = json.loads((run / "rounds" / "1" / "metrics.json").read_text())
    assert "rm_auroc" in json.dumps(metrics)
