import pytest

from sharpen.feedback.audit import audit_signal
from sharpen.stats import auroc, precision_recall
from sharpen.types import Completion, Prompt, Sample, Scored


def test_auroc_by_hand():
    # positives 0.9, 0.4; negatives 0.5, 0.1, 0.4. Pairs (pos > neg): 0.9 beats all 3;
    # 0.4 beats 0.1, ties 0.4 (half), loses to 0.5 -> (3 + 1.5) / 6 = 0.75
    assert auroc([0.9, 0.5, 0.4, 0.1, 0.4], [True, False, True, False, False]) == pytest.approx(0.75)
    assert auroc([1, 2, 3], [True, True, True]) is None
    assert auroc([3, 2, 1], [True, False, False]) == 1.0 and auroc([1, 2, 3], [True, False, False]) == 0.0


def test_precision_recall():
    p, r = precision_recall([1, 1, 0, 0], [True, False, True, True], [True, True, False, False])
    assert p == 0.5 and r == pytest.approx(1 / 3)
    assert precision_recall([0], [True], [False]) == (None, 0.0)


def _scored(pid, values_correct):
    prompt = Prompt(pid, pid)
    return [Scored(Sample(prompt, Completion("", [], [], True), i), reward=v, correct=c)
            for i, (v, c) in enumerate(values_correct)]


def test_audit_at_threshold_and_within_prompt():
    # prompt a is easy (high values), b hard: global AUROC is high, but inside each prompt the
    # signal ranks the wrong sample first
    scored = _scored("a", [(0.9, False), (0.8, True), (0.7, True)]) + _scored("b", [(0.2, False), (0.1, False)])
    rep = audit_signal(scored, [s.reward for s in scored], 0.5)
    assert rep["precision"] == pytest.approx(2 / 3) and rep["recall"] == 1.0
    # globally each correct sample beats 2 of 3 wrong ones; within a, both lose to 0.9; b has no correct
    assert rep["auroc"] == pytest.approx(4 / 6) and rep["auroc_within_prompt"] == 0.0 and rep["prompts_mixed"] == 1
    rel = audit_signal(scored, [s.reward for s in scored], None)  # above the prompt's mean (a: 0.8, b: 0.15)
    assert rel["threshold"] == "prompt_mean" and rel["precision"] == 0.0 and rel["rewarded_rate"] == 0.4
