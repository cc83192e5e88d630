import torch

from sharpen.objectives.trainer import fit, num_steps


def _record_loss(policy, seen):
    def loss_fn(batch):
        seen.append(list(batch))
        lp, mask = policy.token_logprobs([[1, 3]] * len(batch), [[4 + b, 2] for b in batch])
        return -(lp * mask).sum() / mask.sum(), {"batch": float(len(batch))}
    return loss_fn


def test_fit_counts_steps_shuffles_with_generator_and_leaves_eval_mode(tiny_policy):
    seen = []
    stats = fit(tiny_policy, list(range(10)), _record_loss(tiny_policy, seen), lr=1e-3, epochs=2, batch_size=4,
                generator=torch.Generator().manual_seed(0))
    assert stats["steps"] == num_steps(10, 4, 2) == 6
    assert [len(b) for b in seen] == [4, 4, 2, 4, 4, 2]
    assert sorted(sum(seen[:3], [])) == list(range(10))  # each epoch is a permutation
    assert seen[:3] != [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]  # shuffled
    assert abs(stats["batch"] - (4 + 4 + 2 + 4 + 4 + 2) / 6) < 1e-9  # stats are per-step means
    assert {"loss", "grad_norm"} <= set(stats)
    assert not tiny_policy.model.training


def test_fit_is_reproducible_and_respects_max_steps(tiny_policy):
    start = {k: v.clone() for k, v in tiny_policy.model.state_dict().items()}
    runs = []
    for _ in range(2):
        tiny_policy.model.load_state_dict(start)
        seen = []
        stats = fit(tiny_policy, list(range(10)), _record_loss(tiny_policy, seen), lr=1e-2, epochs=3, batch_size=4,
                    generator=torch.Generator().manual_seed(7), max_steps=4)
        runs.append((seen, stats, tiny_policy.model.state_dict()["lm_head.weight"].clone()))
    assert runs[0][1]["steps"] == 4 and len(runs[0][0]) == 4
    assert runs[0][0] == runs[1][0] and runs[0][1] == runs[1][1]
    assert torch.equal(runs[0][2], runs[1][2])  # fresh optimizer each call: same start, same result


def test_fit_on_no_data_takes_no_step(tiny_policy):
    assert fit(tiny_policy, [], lambda b: None, lr=1.0, epochs=1, batch_size=1, generator=torch.Generator()) == {"steps": 0}


def test_lr_factor_warmup_then_cosine_to_zero():
    from sharpen.objectives.trainer import lr_factor

    assert [lr_factor(s, 10) for s in range(3)] == [1.0, 1.0, 1.0]  # constant: the old schedule
    assert [round(lr_factor(s, 10, warmup_steps=3), 3) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    cos = [lr_factor(s, 10, warmup_steps=2, schedule="cosine") for s in range(2, 10)]
    assert cos[0] == 1.0 and all(a > b for a, b in zip(cos, cos[1:])) and cos[-1] < 0.05
