"""`sharpen rm train`: the loss is TRL's, the split is by prompt, the result loads with
transformers alone and learns a separable signal; bad input is one line with nothing written."""
from __future__ import annotations

import json
import random
from types import SimpleNamespace

import pytest
import torch

from sharpen.reward_models.data import Labelled, is_heldout, pairs_from_samples, read_pairs
from sharpen.reward_models.train import bradley_terry_loss, pointwise_loss
from tests.conftest import run_cli
from tests.test_bad_input import one_line_error


def _trl_reward_loss(chosen: torch.Tensor, rejected: torch.Tensor, margin=None, center=None) -> torch.Tensor:
    """TRL's RewardTrainer.compute_loss on a mocked model whose logits are the given rewards."""
    from collections import defaultdict

    from trl.trainer.reward_trainer import RewardTrainer

    logits = torch.cat([chosen, rejected]).unsqueeze(-1)
    acc = SimpleNamespace(gather_for_metrics=lambda x: x, gather=lambda x: x, device="cpu")
    fake = SimpleNamespace(model=SimpleNamespace(training=False), accelerator=acc, args=SimpleNamespace(center_rewards_coefficient=center),
                           _metrics=defaultdict(lambda: defaultdict(list)), _total_train_tokens=0, _tp_size=1)
    inputs = {"input_ids": torch.zeros(len(logits), 3, dtype=torch.long), "attention_mask": torch.ones(len(logits), 3, dtype=torch.long)}
    if margin is not None:
        inputs["margin"] = margin
    return RewardTrainer.compute_loss(fake, lambda **kw: SimpleNamespace(logits=logits), inputs)


@pytest.mark.parametrize("margin,center", [(None, None), (torch.tensor([0.5, 0.0, 1.0, 0.2]), None), (None, 0.01),
                                           (torch.tensor([0.1, 0.3, 0.0, 2.0]), 0.05)])
def test_bradley_terry_loss_matches_trl(margin, center):
    pytest.importorskip("trl")
    g = torch.Generator().manual_seed(0)
    chosen, rejected = torch.randn(4, generator=g), torch.randn(4, generator=g)
    ours = bradley_terry_loss(chosen, rejected, margin, center)
    assert ours.item() == pytest.approx(_trl_reward_loss(chosen, rejected, margin, center).item(), rel=1e-6)


def test_loss_directions():
    c, r = torch.tensor([0.0], requires_grad=True), torch.tensor([0.0], requires_grad=True)
    bradley_terry_loss(c, r).backward()
    assert c.grad.item() < 0 < r.grad.item()  # descent raises the chosen reward, lowers the rejected
    x = torch.tensor([0.0, 0.0], requires_grad=True)
    pointwise_loss(x, torch.tensor([True, False])).backward()
    assert x.grad[0].item() < 0 < x.grad[1].item()


def test_heldout_split_is_by_prompt_and_fixed():
    ids = [f"p{i}" for i in range(2000)]
    held = [i for i in ids if is_heldout(i, 0.2, 0)]
    assert 0.17 < len(held) / len(ids) < 0.23 and held == [i for i in ids if is_heldout(i, 0.2, 0)]
    assert held != [i for i in ids if is_heldout(i, 0.2, 1)]


def test_pairs_are_right_against_wrong_within_a_prompt():
    s = [Labelled("a", "q", "1", True), Labelled("a", "q", "2", False), Labelled("a", "q", "3", False),
         Labelled("b", "r", "4", True)]
    pairs = pairs_from_samples(s, 10, random.Random(0))
    assert sorted((p.chosen, p.rejected) for p in pairs) == [("1", "2"), ("1", "3")]
    assert len(pairs_from_samples(s, 1, random.Random(0))) == 1


def _pairs_file(path, n=200):
    """A separable signal: the chosen completion ends in 'y', the rejected in 'n'."""
    rng = random.Random(0)
    rows = [{"prompt": f"{rng.randint(0, 10**6)}=", "chosen": f"{rng.randint(0, 99)}y", "rejected": f"{rng.randint(0, 99)}n"}
            for _ in range(n)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_rm_train_on_pairs_learns_and_loads_with_transformers_alone(capsys, monkeypatch, tmp_path, tiny_checkpoint):
    from transformers import AutoModelForSequenceClassification

    from sharpen.reward_models.model import RewardModel

    out = tmp_path / "rm"
    code, stdout, err = run_cli(capsys, monkeypatch, "rm", "train", "--pairs", _pairs_file(tmp_path / "p.jsonl"),
                                "--backbone", tiny_checkpoint, "--out", out, "--lr", "1e-3", "--epochs", "3")
    assert code == 0, err
    meta = json.loads((out / "sharpen_rm.json").read_text())
    assert meta["heldout"]["pairwise_accuracy"] > 0.9 and meta["heldout"]["auroc"] > 0.9, meta["heldout"]
    assert meta["data"]["heldout_prompts"] > 0 and meta["data"]["train_pairs"] + meta["data"]["heldout_pairs"] == 200
    row = next(line for line in stdout.splitlines() if "trained" in line)
    assert f"{100 * meta['heldout']['pairwise_accuracy']:.1f}%" in row
    # plain transformers: the same scores as sharpen's (last token, right padding)
    rm = RewardModel.load(out)
    plain = AutoModelForSequenceClassification.from_pretrained(out).eval()
    ids = rm.encode(["12=", "7="], ["5y", "33n"])
    width = max(map(len, ids))
    batch = torch.tensor([x + [rm.tokenizer.pad_token_id] * (width - len(x)) for x in ids])
    with torch.no_grad():
        theirs = plain(input_ids=batch, attention_mask=(batch != rm.tokenizer.pad_token_id).long()).logits.squeeze(-1)
    assert rm.score(["12=", "7="], ["5y", "33n"]) == pytest.approx(theirs.tolist(), abs=1e-5)
    assert rm.score(["12="], ["5y"])[0] > rm.score(["12="], ["5n"])[0]


@pytest.mark.parametrize("line,needles", [('{"prompt": "q", "chosen": "a"}\n', [":1", "rejected"]),
                                          ('{"prompt": "q", "chosen": "a", "rejected": "b"}\nnot json\n', [":2", "JSON"]),
                                          ('{"prompt": "q", "chosen": "a", "rejected": "b", "margin": "x"}\n', ["margin"])])
def test_a_bad_pairs_file_is_one_line_and_writes_nothing(capsys, monkeypatch, tmp_path, tiny_checkpoint, line, needles):
    f = tmp_path / "p.jsonl"
    f.write_text(line)
    code, _, err = run_cli(capsys, monkeypatch, "rm", "train", "--pairs", f, "--backbone", tiny_checkpoint,
                           "--out", tmp_path / "rm")
    one_line_error(code, err, "p.jsonl", *needles)
    assert not (tmp_path / "rm").exists()


def test_rm_train_refuses_a_users_folder_and_a_non_run(capsys, monkeypatch, tmp_path, tiny_checkpoint):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    code, _, err = run_cli(capsys, monkeypatch, "rm", "train", "--pairs", _pairs_file(tmp_path / "p.jsonl"),
                           "--backbone", tiny_checkpoint, "--out", mine)
    one_line_error(code, err, "--out", "--force")
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]
    code, _, err = run_cli(capsys, monkeypatch, "rm", "train", tmp_path, "--out", tmp_path / "rm")
    one_line_error(code, err, "not a run directory")
    code, _, err = run_cli(capsys, monkeypatch, "rm", "train", "--out", tmp_path / "rm")
    one_line_error(code, err, "RUN_DIR", "--pairs")
    assert not (tmp_path / "rm").exists()


def test_rm_train_on_a_run_uses_its_labels_and_starting_model(capsys, monkeypatch, tmp_path, weak_overrides):
    run = tmp_path / "run"
    code, _, err = run_cli(capsys, monkeypatch, "run", "star", *weak_overrides, "--out", run)
    assert code == 0, err
    out = tmp_path / "rm"
    code, stdout, err = run_cli(capsys, monkeypatch, "rm", "train", run, "--out", out, "--heldout", "0.3", "--loss", "pointwise")
    assert code == 0, err
    meta = json.loads((out / "sharpen_rm.json").read_text())
    rows = [json.loads(x) for x in (run / "rounds" / "1" / "samples.jsonl").read_text().splitlines()]
    distinct = {(r["prompt_id"], r["completion"]) for r in rows}
    assert meta["data"]["train_samples"] + meta["data"]["heldout_samples"] == len(distinct)
    assert 0 <= meta["heldout"]["auroc"] <= 1 and meta["loss"] == "pointwise"
    policy_path = next(o for o in weak_overrides if o.startswith("policy.path=")).split("=", 1)[1]
    assert meta["backbone"] == policy_path  # the run's starting model


def test_read_pairs_reads_margins(tmp_path):
    f = tmp_path / "p.jsonl"
    f.write_text('{"prompt": "q", "chosen": "a", "rejected": "b", "margin": 2}\n\n{"prompt": "r", "chosen": "c", "rejected": "d"}\n')
    assert [(p.prompt, p.margin) for p in read_pairs(f)] == [("q", 2.0), ("r", 0.0)]
