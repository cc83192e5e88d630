"""Process reward models: Math-Shepherd labels from rollouts, a per-step head that learns
the chain task's true step correctness, aggregation, and one-line errors."""
from __future__ import annotations

import random

import pytest
import torch

from sharpen.reward_models.prm import ProcessRewardModel, aggregate, math_shepherd_labels, split_steps
from sharpen.tasks import make_task
from sharpen.types import Completion, SamplingParams
from tests.conftest import run_cli
from tests.test_bad_input import one_line_error

TASK = make_task({"name": "chain"})


def test_aggregates():
    assert aggregate([0.9, 0.2, 0.8], "min") == 0.2
    assert aggregate([0.5, 0.5], "product") == 0.25
    assert aggregate([0.1, 0.7], "last") == 0.7
    assert aggregate([], "min") == 0.0
    assert split_steps("a\n\nb\n") == ["a", "b"]


def test_math_shepherd_labels_are_the_share_of_rollouts_that_reach_the_answer():
    """A fake policy that finishes a right prefix correctly 3 times in 4 and a wrong one never."""
    p = TASK.make_problem(47, [("add", 8), ("sub", 5), ("add", 9)])
    gold = p.reference.split("\n")
    slipped = TASK.solution(47, [("add", 8), ("sub", 5), ("add", 9)], [56, 51, 60])  # wrong from step 1
    calls = []

    def generate(texts, params, seeds, progress=None):
        calls.append((list(texts), params.n, list(seeds)))
        out = []
        for t in texts:
            prefix = t[len(p.text):]
            k = prefix.count("\n")
            right = prefix == "\n".join(gold[:k]) + "\n"
            rest = "\n".join(gold[k:])
            out.append([Completion(rest if right and j < 3 else "junk", [], [], True) for j in range(params.n)])
        return out

    labels = math_shepherd_labels(generate, TASK, [(p, p.reference), (p, slipped)], 4, SamplingParams(n=99),
                                  lambda i, k: 1000 * i + k)
    assert labels == [[0.75, 0.75, 1.0], [0.0, 0.0, 0.0]]
    assert len(calls) == 1 and calls[0][1] == 4 and calls[0][2] == [0, 1, 1000, 1001]  # one batched call


def _marked(n, seed):
    """Steps whose last character says whether they are good (y) or bad (n), at random: a
    signal any per-step head must find at the step's end, and an outcome head could not."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        labels = [rng.random() < 0.5 for _ in range(rng.randint(2, 5))]
        steps = [f"{chr(97 + i)}{rng.randint(10, 99)}{'y' if good else 'n'}" for i, good in enumerate(labels)]
        rows.append((f"{rng.randint(0, 999)}=", "\n".join(steps), [float(x) for x in labels]))
    return rows


def test_a_prm_reads_every_step_and_loads_with_transformers_alone(tiny_checkpoint, tmp_path):
    from transformers import AutoModelForTokenClassification

    train, held = _marked(400, 0), _marked(80, 1)
    prm = ProcessRewardModel.from_backbone(tiny_checkpoint, seed=0)
    losses = prm.fit([p for p, _, _ in train], [c for _, c, _ in train], [y for _, _, y in train], epochs=4, lr=2e-3,
                     batch_size=32, seed=0)
    assert losses[-1] < losses[0]
    scores = prm.step_scores([p for p, _, _ in held], [c for _, c, _ in held])
    flat = [(s > 0.5) == (t > 0.5) for ss, (_, _, ts) in zip(scores, held) for s, t in zip(ss, ts)]
    assert [len(x) for x in scores] == [len(y) for _, _, y in held] and sum(flat) / len(flat) > 0.9
    prm.meta["kind"] = "process"
    prm.save(tmp_path / "prm")
    again = ProcessRewardModel.load(tmp_path / "prm")
    plain = AutoModelForTokenClassification.from_pretrained(tmp_path / "prm").eval()
    ids, ends = again.encode(held[0][0], held[0][1])
    with torch.no_grad():
        theirs = torch.sigmoid(plain(input_ids=torch.tensor([ids])).logits[0, ends, 0]).tolist()
    assert again.step_scores([held[0][0]], [held[0][1]])[0] == pytest.approx(theirs, abs=1e-5)


def test_prm_bad_input_is_one_line(capsys, monkeypatch, tmp_path):
    code, _, err = run_cli(capsys, monkeypatch, "rm", "train", "--kind", "prm", "--out", tmp_path / "p")
    one_line_error(code, err, "RUN_DIR")
    code, _, err = run_cli(capsys, monkeypatch, "rm", "train", tmp_path, "--kind", "nope", "--out", tmp_path / "p")
    one_line_error(code, err, "--kind")
    with pytest.raises(Exception, match="holds no process reward model"):
        ProcessRewardModel.load(tmp_path)
    assert not (tmp_path / "p").exists()
