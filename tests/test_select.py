"""Inference-time selection (`sharpen.select`): each method on hand-built pools with known
scores, the nested prefix curves, one scoring pass per scorer, and the `eval --select` and
`scaling` commands on a one-layer tiny model."""
from __future__ import annotations

import csv
import random

import pytest

from sharpen import select
from sharpen.errors import UserError
from sharpen.monitor.metrics import pass_at_k
from sharpen.registry import FEEDBACK
from sharpen.select import Candidate, Pool, accuracy, borda_pick, curves, parse_methods, pick, prefix_sizes, vote_pick
from tests.conftest import run_cli, small_tiny_policy

SCORE_KEYS = ("self_certainty", "likelihood", "judge", "rm", "prm", "verifier")


def cand(answer: str | None, correct: bool, **scores: float) -> Candidate:
    return Candidate(answer, correct, {k: scores.get(k, 0.0) for k in SCORE_KEYS} | {"verifier": float(correct)})


def test_vote_tie_goes_to_the_answer_seen_first():
    pool = [cand("7", False), cand("8", True), cand("8", True), cand("7", False)]
    assert vote_pick(pool) == 0  # 2 votes each: "7" came first
    assert vote_pick(pool[:3]) == 1  # "8" leads 2-1: its first sample
    p = Pool(pool)
    assert accuracy([p], "vote", 4) == 0.0 and accuracy([p], "vote", 3) == 1.0 and accuracy([p], "vote", 1) == 0.0


def test_vote_ignores_malformed_answers_and_none_is_wrong():
    assert vote_pick([cand(None, False), cand(None, False), cand("3", True)]) == 2
    assert vote_pick([cand(None, False), cand(None, False)]) is None
    assert accuracy([Pool([cand(None, False)])], "vote", 1) == 0.0


@pytest.mark.parametrize("method,key", [("certainty", "self_certainty"), ("likelihood", "likelihood"), ("judge", "judge")])
def test_scored_methods_pick_the_max_ties_to_the_earlier_sample(method, key):
    pool = [cand("1", False, **{key: 0.1}), cand("2", True, **{key: 0.9}), cand("3", False, **{key: 0.9}),
            cand("4", False, **{key: -2.0})]
    assert pick(method, pool) == 1
    assert pick(method, pool[::-1]) == 1  # reversed: the 0.9 of "3" is now the earlier one
    assert accuracy([Pool(pool)], method, 4) == 1.0 and accuracy([Pool(pool[::-1])], method, 4) == 0.0


def test_borda_weights_ranks_not_only_the_top():
    # C has the single most certain sample, A the next three: certainty picks C, Borda A
    # (C: 4^0.5 = 2; A: 3^0.5 + 2^0.5 + 1 = 4.15)
    pool = [cand("C", False, self_certainty=0.9), cand("A", True, self_certainty=0.8),
            cand("A", True, self_certainty=0.7), cand("A", True, self_certainty=0.6)]
    assert pick("certainty", pool) == 0 and borda_pick(pool) == 1
    # B outvoted 3-2 by A, but B's two samples are the most certain: 5^.5 + 2 = 4.24 > 3^.5 + 2^.5 + 1 = 4.15
    pool = [cand("A", False, self_certainty=0.1), cand("A", False, self_certainty=0.2), cand("B", True, self_certainty=0.9),
            cand("A", False, self_certainty=0.3), cand("B", True, self_certainty=0.8)]
    assert vote_pick(pool) == 0 and borda_pick(pool) == 2 and accuracy([Pool(pool)], "borda", 5) == 1.0


def test_borda_with_p_0_is_majority_vote():
    rng = random.Random(0)
    for _ in range(200):
        pool = [cand(rng.choice(["1", "2", "3", None]), False, self_certainty=rng.random()) for _ in range(rng.randint(1, 8))]
        assert borda_pick(pool, p=0.0) == vote_pick(pool)


def random_pools(seed: int, prompts: int = 40, n: int = 16) -> list[Pool]:
    rng = random.Random(seed)
    pools = []
    for _ in range(prompts):
        rate = rng.random()
        cands = []
        for _ in range(n):
            right = rng.random() < rate
            cands.append(cand("42" if right else rng.choice(["1", "2", None]), right, self_certainty=rng.gauss(0, 1),
                              likelihood=rng.gauss(0, 1), judge=rng.random(), rm=rng.gauss(0, 1), prm=rng.random()))
        pools.append(Pool(cands, greedy_correct=rng.random() < 0.3))
    return pools


def test_verifier_is_pass_at_n_and_the_ceiling():
    pools = random_pools(1)
    sizes = prefix_sizes(16)
    res = curves(pools, select.METHODS, sizes)
    for k in sizes:
        want = sum(pass_at_k(k, sum(c.correct for c in p.candidates[:k]), k) for p in pools) / len(pools)
        assert res["verifier"][k] == pytest.approx(want)
        for m in ("vote", "certainty", "borda", "likelihood", "judge"):  # every selector picks from the same pool
            assert res[m][k] <= res["verifier"][k]
    assert [res["verifier"][k] for k in sizes] == sorted(res["verifier"][k] for k in sizes)  # nested pools: monotone
    assert 0 < res["verifier"][1] < res["verifier"][16]


def test_prefix_nesting_at_n_1_every_method_is_the_first_sample():
    pools = random_pools(2)
    first = sum(p.candidates[0].correct for p in pools) / len(pools)
    res = curves(pools, select.METHODS, prefix_sizes(16))
    for m in ("vote", "certainty", "borda", "likelihood", "judge", "rm", "rm_vote", "prm", "verifier"):
        assert res[m][1] == pytest.approx(first), m
    greedy = sum(bool(p.greedy_correct) for p in pools) / len(pools)
    assert set(res["greedy"].values()) == {greedy}  # the greedy decode does not depend on N


def test_parse_methods_and_prefix_sizes():
    assert parse_methods(["vote,verifier", "greedy", "vote"]) == ["vote", "verifier", "greedy"]
    assert parse_methods("certainty, borda") == ["certainty", "borda"]
    with pytest.raises(UserError, match="unknown selection method 'best'"):
        parse_methods(["vote,best"])
    with pytest.raises(UserError, match="no method"):
        parse_methods([","])
    assert prefix_sizes(16) == [1, 2, 4, 8, 16] and prefix_sizes(6) == [1, 2, 4, 6] and prefix_sizes(1) == [1]
    with pytest.raises(UserError, match="N >= 1"):
        prefix_sizes(0)


def test_cli_method_names_match_the_module():
    from sharpen.cli import SELECT_METHODS

    assert SELECT_METHODS == select.METHODS


def tiny_context(policy):
    from sharpen.engines import HFEngine
    from sharpen.progress import RichProgress
    from sharpen.tasks import make_task
    from sharpen.types import Context

    return Context(task=make_task({"name": "arithmetic"}), policy=policy, round=0, seed=0, reference=lambda which: policy,
                   progress=RichProgress(enabled=False), engine=HFEngine(policy))


def test_each_scorer_runs_once_over_all_samples(monkeypatch):
    """certainty and borda share one self-certainty pass; every sample is scored exactly once per scorer."""
    ctx = tiny_context(small_tiny_policy(0))
    seen: list[tuple[str, int]] = []
    real = select.run_feedback

    def counting(samples, cfg, c):
        seen.append((cfg.kind, len(samples)))
        return real(samples, cfg, c)

    monkeypatch.setattr(select, "run_feedback", counting)
    prompts = ctx.task.prompts("eval", 6)
    pools = select.build_pools(ctx, prompts, ["greedy", "certainty", "borda", "likelihood", "vote"], n=4,
                               temperature=0.8, max_new_tokens=6, seeds=list(range(6)))
    assert sorted(seen) == [("likelihood", 24), ("self_certainty", 24)]
    assert [len(p.candidates) for p in pools] == [4] * 6 and all(p.greedy_correct is not None for p in pools)
    assert all(set(c.scores) == {"verifier", "self_certainty", "likelihood"} for p in pools for c in p.candidates)


@pytest.fixture(scope="module")
def small_checkpoint(tmp_path_factory):
    """The one-layer tiny model saved as a checkpoint: selection on it runs in seconds."""
    path = tmp_path_factory.mktemp("small") / "ckpt"
    small_tiny_policy(0).save(path)
    return path


def test_eval_select_prints_each_split_and_method(capsys, monkeypatch, small_checkpoint):
    code, out, err = run_cli(capsys, monkeypatch, "eval", small_checkpoint, "--n", "4", "--select", "vote,verifier",
                             "--prompts", "20", "--max-new-tokens", "6")
    assert code == 0, err
    assert "accuracy@4" in out
    rows = [[c.strip() for c in line.strip("│┃ ").split("│")] for line in out.splitlines() if "%" in line]
    assert [r[:2] for r in rows] == [["eval", "vote"], ["eval", "verifier"], ["holdout", "vote"], ["holdout", "verifier"]], out


def test_scaling_writes_csv_and_png(capsys, monkeypatch, weak_checkpoint, tmp_path):
    """On the weak model (some samples right) so the ceiling and nesting checks have numbers to bite on."""
    out_dir = tmp_path / "scale"
    code, out, err = run_cli(capsys, monkeypatch, "scaling", weak_checkpoint, "--task", "arithmetic", "task.difficulty=[1, 2]",
                             "task.width=2", "--max-n", "8", "--prompts", "40", "--max-new-tokens", "12", "--out", out_dir)
    assert code == 0, err
    rows = list(csv.DictReader(open(out_dir / "scaling.csv")))
    assert [(r["method"], int(r["n"])) for r in rows] == [(m, k) for m in select.DEFAULT_SCALING for k in (1, 2, 4, 8)]
    assert all(r["split"] == "holdout" and r["prompts"] == "40" and 0.0 <= float(r["accuracy"]) <= 1.0 for r in rows)
    acc = {(r["method"], int(r["n"])): float(r["accuracy"]) for r in rows}
    for m in ("vote", "certainty", "borda", "likelihood"):
        assert acc[(m, 1)] == acc[("verifier", 1)] and all(acc[(m, k)] <= acc[("verifier", k)] for k in (1, 2, 4, 8))
    # 40 prompts and N up to 8: the weak model's pass@8 is above 0 on any CPU (10 prompts x 4 gave
    # 0.0 on one machine: its float rounding trains a slightly different weak model)
    assert acc[("verifier", 1)] <= acc[("verifier", 2)] <= acc[("verifier", 4)] <= acc[("verifier", 8)] and acc[("verifier", 8)] > 0
    assert (out_dir / "scaling.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "N=8" in out and "pass@N (verifier)" in out


def test_scaling_default_out_dir_is_named_after_the_checkpoint(monkeypatch, small_checkpoint, tmp_path):
    from sharpen import api
    from sharpen.progress import RichProgress

    monkeypatch.chdir(tmp_path)
    res = api.scaling(small_checkpoint, methods="greedy", max_n=2, prompts=3, max_new_tokens=4,
                      progress=RichProgress(enabled=False))
    assert res["out"] == tmp_path.joinpath(f"scaling-{small_checkpoint.name}").relative_to(tmp_path)
    assert (tmp_path / res["out"] / "scaling.csv").exists()


@pytest.mark.parametrize("args,needle", [
    (["--select", "vote,best"], "unknown selection method 'best'"),
    (["--n", "4"], "--n is the samples per prompt for --select"),
])
def test_eval_select_bad_input_is_one_line_error(capsys, monkeypatch, small_checkpoint, args, needle):
    code, _, err = run_cli(capsys, monkeypatch, "eval", small_checkpoint, "--prompts", "2", *args)
    lines = [l for l in err.strip().splitlines() if l.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error:") and needle in lines[0], err


def test_scaling_n_below_1_is_a_usage_error(capsys, monkeypatch, small_checkpoint):
    code, _, err = run_cli(capsys, monkeypatch, "scaling", small_checkpoint, "--max-n", "0")
    assert code == 2 and "--max-n" in err and "Traceback" not in err


def test_judge_selection_ranks_by_the_judges_p_yes():
    assert "judge" in FEEDBACK.names()
    ctx = tiny_context(small_tiny_policy(0))
    prompts = ctx.task.prompts("eval", 8)
    pools = select.build_pools(ctx, prompts, ["judge", "verifier"], n=4, temperature=0.8, max_new_tokens=6,
                               seeds=list(range(8)))
    p_yes = [c.scores["judge"] for p in pools for c in p.candidates]
    assert all(0.0 <= v <= 1.0 for v in p_yes) and len(set(p_yes)) > 1  # a probability that differs between samples
    for p in pools:
        js = [c.scores["judge"] for c in p.candidates]
        assert pick("judge", p.candidates) == js.index(max(js))
    res = curves(pools, ["judge", "verifier"], [1, 2, 4])
    assert res["judge"][1] == res["verifier"][1] and all(res["judge"][k] <= res["verifier"][k] for k in (1, 2, 4))


class NoJudgeFormat:
    """A Task that defines no judge format (no `judge_prompt`), as a hand-written task may."""

    def __init__(self, inner):
        self.inner, self.name = inner, inner.name

    def prompts(self, split, n, round=0):
        return self.inner.prompts(split, n, round)

    def extract(self, completion):
        return self.inner.extract(completion)

    def score(self, prompt, answer):
        return self.inner.score(prompt, answer)

    def score_batch(self, prompts, completions):
        return self.inner.score_batch(prompts, completions)


def test_judge_on_a_task_without_a_judge_format_is_one_line_error(capsys, monkeypatch, small_checkpoint):
    import sharpen.tasks

    real = sharpen.tasks.make_task
    monkeypatch.setattr(sharpen.tasks, "make_task", lambda cfg: NoJudgeFormat(real(cfg)))
    code, _, err = run_cli(capsys, monkeypatch, "eval", small_checkpoint, "--select", "vote,judge", "--prompts", "2")
    lines = [l for l in err.strip().splitlines() if l.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: --select judge:") and "judge format" in lines[0], err
    code, _, err = run_cli(capsys, monkeypatch, "eval", small_checkpoint, "--select", "vote", "--n", "2", "--prompts", "2",
                           "--max-new-tokens", "4")
    assert code == 0, err  # the same task without judge selection runs


def test_rm_vote_weighs_each_vote_by_sigmoid_of_its_score():
    from sharpen.select import weighted_vote_pick

    pool = [cand("1", False, rm=-3.0), cand("1", False, rm=-3.0), cand("2", True, rm=3.0), cand(None, False, rm=9.0)]
    assert vote_pick(pool) == 0 and weighted_vote_pick(pool) == 2  # 2 x 0.047 < 0.953
    assert pick("rm", pool) == 3 and pick("prm", [cand("1", False, prm=0.2), cand("2", True, prm=0.9)]) == 1


@pytest.fixture(scope="module")
def reward_model_dirs(tmp_path_factory, small_checkpoint):
    from sharpen.reward_models.model import RewardModel
    from sharpen.reward_models.prm import ProcessRewardModel

    orm, prm = tmp_path_factory.mktemp("orm"), tmp_path_factory.mktemp("prm")
    RewardModel.from_backbone(small_checkpoint, "raw").save(orm)
    p = ProcessRewardModel.from_backbone(small_checkpoint)
    p.save(prm)
    return orm, prm


def test_eval_select_with_reward_models(capsys, monkeypatch, small_checkpoint, reward_model_dirs):
    import json

    orm, prm = reward_model_dirs
    code, out, err = run_cli(capsys, monkeypatch, "eval", small_checkpoint, "--n", "4", "--select", "vote,rm,rm_vote,prm",
                             "--rm", orm, "--rm", prm, "--prompts", "10", "--max-new-tokens", "6", "--json")
    assert code == 0, err
    got = json.loads(out)
    assert all(set(s["select"]) == {"vote", "rm", "rm_vote", "prm"} for s in got["splits"].values())


@pytest.mark.parametrize("args,needle", [(["--select", "rm"], "outcome reward model"),
                                         (["--select", "prm", "--rm", "ORM"], "process reward model"),
                                         (["--select", "vote", "--rm", "ORM"], "--rm"),
                                         (["--rm", "ORM"], "--select"),
                                         (["--select", "rm", "--rm", "NOWHERE"], "holds no reward model")])
def test_reward_model_selection_bad_input_is_one_line(capsys, monkeypatch, small_checkpoint, reward_model_dirs, tmp_path,
                                                      args, needle):
    from tests.test_bad_input import one_line_error

    args = [str(reward_model_dirs[0]) if a == "ORM" else str(tmp_path) if a == "NOWHERE" else a for a in args]
    code, _, err = run_cli(capsys, monkeypatch, "eval", small_checkpoint, *args, "--prompts", "4")
    one_line_error(code, err, needle)
