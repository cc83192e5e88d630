"""Seeding: the band check and rewind-on-overshoot logic on a scripted fake accuracy, and the cache.

`_check` (greedy decoding of eval prompts) is replaced by a script of accuracies, so
the schedule's control flow is tested in seconds with real (tiny-batch) training steps.
"""
import pytest
import torch

import sharpen.seeding as seeding
from sharpen.seeding import SEED_ROUND_BASE, SeedConfig, load_or_train_seed, seed_key, train_seed
from sharpen.tasks import make_task

TASK = {"name": "arithmetic"}
CHEAP = dict(batch_size=4, check_n=8, max_steps=40)


def script(monkeypatch, accs):
    """Make `_check` return `accs` in order (then the last one); both ops equal unless a pair is given."""
    calls = []

    def fake(policy, task, cfg):
        a = accs[min(len(calls), len(accs) - 1)]
        calls.append(a)
        acc, by_op = a if isinstance(a, tuple) else (a, {"add": a, "mul": a})
        return acc, by_op

    monkeypatch.setattr(seeding, "_check", fake)
    return calls


def run(cfg):
    return train_seed(make_task(TASK), 0, cfg)


def weights(policy):
    return {k: v.clone() for k, v in policy.model.state_dict().items()}


def same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_stops_at_the_first_check_in_band(monkeypatch):
    script(monkeypatch, [0.0, 0.1, 0.3])
    _, report = run(SeedConfig(check_every=2, **CHEAP))
    assert report["steps"] == 6 and report["in_band"]
    assert [h["step"] for h in report["history"]] == [2, 4, 6]


def test_every_op_must_have_started(monkeypatch):
    lopsided = (0.3, {"add": 0.02, "mul": 0.58})
    script(monkeypatch, [lopsided, lopsided, (0.3, {"add": 0.2, "mul": 0.4})])
    _, report = run(SeedConfig(check_every=2, **CHEAP))
    assert report["steps"] == 6 and report["in_band"]


def test_gives_up_at_max_steps(monkeypatch):
    script(monkeypatch, [0.0])
    _, report = run(SeedConfig(check_every=5, **{**CHEAP, "max_steps": 10}))
    assert report["steps"] == 10 and not report["in_band"]


def test_overshoot_rewinds_and_replays_with_fine_checks(monkeypatch):
    # Straight run: checks every step, in band at step 5.
    script(monkeypatch, [0.0, 0.0, 0.0, 0.0, 0.3])
    straight, r1 = run(SeedConfig(check_every=1, fine_every=1, **CHEAP))
    assert r1["steps"] == 5
    # Coarse run: fine at 4, overshoot at 8 -> rewind to 4, replay 5 (in band).
    script(monkeypatch, [0.0, 0.9, 0.3])
    rewound, r2 = run(SeedConfig(check_every=4, fine_every=1, **CHEAP))
    assert r2["steps"] == 5 and r2["in_band"]
    assert [h["step"] for h in r2["history"]] == [4, 8, 4, 5]
    assert "rewound" in r2["history"][2]["note"]
    # The replay restored weights *and* optimizer state and saw the same batches.
    assert same(weights(straight), weights(rewound))


def test_overshoot_at_fine_grain_keeps_the_previous_check(monkeypatch):
    script(monkeypatch, [0.0, 0.9, 0.9, 0.1])
    policy, report = run(SeedConfig(check_every=4, fine_every=2, **CHEAP))
    assert report["steps"] == 4
    assert "kept previous check" in report["history"][-1]["note"]
    script(monkeypatch, [0.0])
    at4, _ = run(SeedConfig(check_every=4, fine_every=2, **{**CHEAP, "max_steps": 4}))
    assert same(weights(policy), weights(at4))


def test_training_is_deterministic(monkeypatch):
    script(monkeypatch, [0.0])
    cfg = SeedConfig(check_every=3, **{**CHEAP, "max_steps": 3})
    a, _ = run(cfg)
    b, _ = run(cfg)
    assert same(weights(a), weights(b))
    task = make_task(TASK)
    first = task.prompts("train", 4, round=SEED_ROUND_BASE + 2)
    assert first == task.prompts("train", 4, round=SEED_ROUND_BASE + 2)
    assert first != task.prompts("train", 4, round=SEED_ROUND_BASE + 3)


def test_warmup_sets_the_lr_by_step(monkeypatch):
    script(monkeypatch, [0.0])
    seen = []
    real_step = torch.optim.AdamW.step

    def spy(self, *a, **k):
        seen.append(self.param_groups[0]["lr"])
        return real_step(self, *a, **k)

    monkeypatch.setattr(torch.optim.AdamW, "step", spy)
    run(SeedConfig(lr=1e-3, warmup_steps=4, check_every=6, **{**CHEAP, "max_steps": 6}))
    assert seen == pytest.approx([2e-4, 4e-4, 6e-4, 8e-4, 1e-3, 1e-3])  # objectives.trainer.lr_factor


def test_second_call_is_served_from_the_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("SHARPEN_CACHE", str(tmp_path))
    script(monkeypatch, [0.3])
    cfg = SeedConfig(check_every=2, **CHEAP)
    path = load_or_train_seed(TASK, 0, cfg)
    assert (path / "seed.json").exists() and path.parent == tmp_path

    def no_training(*a, **k):
        raise AssertionError("trained although the seed was cached")

    monkeypatch.setattr(seeding, "train_seed", no_training)
    assert load_or_train_seed(TASK, 0, cfg) == path
    assert load_or_train_seed({"name": "arithmetic", "seed": 0}, 0, cfg) == path  # defaults resolve to the same key
    with pytest.raises(AssertionError, match="trained"):
        load_or_train_seed(TASK, 0, SeedConfig(check_every=2, **{**CHEAP, "lr": 2e-3}))


def test_cache_key_changes_with_every_config_field():
    base = SeedConfig()
    keys = {seed_key({"name": "arithmetic"}, base, 0), seed_key({"name": "arithmetic"}, base, 1),
            seed_key({"name": "arithmetic", "difficulty": [1, 4]}, base, 0)}
    for field, value in [("lr", 7e-4), ("warmup_steps", 3), ("weight_decay", 0.1), ("batch_size", 7),
                         ("check_every", 7), ("check_n", 7), ("band", (0.1, 0.2)), ("judge_fraction", 0.2)]:
        keys.add(seed_key({"name": "arithmetic"}, base.model_copy(update={field: value}), 0))
    assert len(keys) == 11


def test_each_step_mixes_in_judge_examples_half_yes_half_no(monkeypatch):
    script(monkeypatch, [0.0])
    seen = []
    real_fit = seeding.fit

    def spy(policy, items, loss_fn, **kw):
        seen.append(list(items))
        return real_fit(policy, items, loss_fn, **kw)

    monkeypatch.setattr(seeding, "fit", spy)
    cfg = SeedConfig(check_every=2, **{**CHEAP, "batch_size": 8, "max_steps": 2})
    _, report = run(cfg)
    for step, items in enumerate(seen):
        judged = [b for b in items if isinstance(b, tuple)]
        assert len(items) - len(judged) == 8 and len(judged) == seeding.judge_steps(cfg) == 4  # 1/3 of 12
        assert sorted(v for _, v in judged) == ["n", "n", "y", "y"]
        assert judged == seeding.judge_batch(make_task(TASK), 0, step, cfg)  # a function of the step
    assert seen[0] != seen[1]
    assert "judge_loss" in report["history"][0]
    assert seeding.judge_steps(SeedConfig()) == 64  # 64 of 192 examples per default step


def test_seed_report_measures_the_judge_on_its_own_samples(monkeypatch):
    script(monkeypatch, [0.3])
    _, report = run(SeedConfig(check_every=2, **CHEAP))
    j = report["judge"]
    assert j["own_samples"] == 4 * CHEAP["check_n"]
    assert 0.0 <= j["accuracy"] <= 1.0 and 0.0 <= j["gold_vs_corrupted_accuracy"] <= 1.0
    assert j["auroc"] is None or 0.0 <= j["auroc"] <= 1.0
    assert set(j["by_op"]) <= {"add", "mul"}


def test_no_judge_data_without_a_task_format_or_with_fraction_zero(monkeypatch):
    script(monkeypatch, [0.0])
    seen = []
    real_fit = seeding.fit
    monkeypatch.setattr(seeding, "fit", lambda policy, items, loss_fn, **kw: seen.append(list(items)) or real_fit(policy, items, loss_fn, **kw))
    _, report = run(SeedConfig(check_every=2, judge_fraction=0.0, **{**CHEAP, "max_steps": 2}))
    assert "judge" not in report and all(not isinstance(b, tuple) for items in seen for b in items)
    from sharpen.tasks.base import has_judge_format
    assert has_judge_format(make_task(TASK)) and not has_judge_format(make_task({"name": "code"}))
