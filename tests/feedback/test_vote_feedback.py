from sharpen.feedback.vote import VoteConfig, vote
from sharpen.types import Completion, SamplingParams


def test_majority_answer_is_the_pseudo_label(fake_ctx, make_samples):
    samples = make_samples({
        "a": ("7", ["x|5", "y|5", "z|7", "|?"]),   # majority 5 is wrong
        "b": ("4", ["p|3", "q|4", "r|4", "s|3"]),   # tie 3/4: the first seen (3) wins
        "c": ("1", ["|?", "|?"]),                    # no answer at all: no label
        "d": ("9", ["m|9", "n|9", "o|8"]),
    })
    rated = vote(samples, VoteConfig(), fake_ctx())
    scored = rated.scored
    assert [s.reward for s in scored] == [1, 1, 0, 0, 1, 0, 0, 1, 0, 0, 1, 1, 0]
    assert [s.correct for s in scored][:4] == [False, False, True, False]  # ground truth kept for monitoring
    assert [s.scores["label_correct"] for s in scored] == [0.0] * 4 + [0.0] * 4 + [0.0] * 2 + [1.0] * 3
    assert scored[0].scores["vote"] == 1.0 and scored[0].scores["verifier"] == 0.0
    st = rated.stats
    assert st["label_accuracy"] == 0.25  # only d's label is right; c has none and counts as wrong
    assert st["no_label_rate"] == 0.25
    # agreement over labelled prompts: a 2/4, b 2/4, d 2/3
    assert abs(st["agreement"] - (0.5 + 0.5 + 2 / 3) / 3) < 1e-9
    # reward == correct for: a: x F/F? x rewarded 1 but wrong (no), y no, z 0 but right (no), ? yes;
    # b: p no, q no, r no, s no; c: both yes; d: all yes -> 1 + 0 + 2 + 3 = 6 of 13
    assert abs(st["reward_accuracy"] - 6 / 13) < 1e-9


def test_ties_break_by_sample_order_not_input_order(fake_ctx, make_samples):
    samples = make_samples({"b": ("4", ["p|3", "q|4", "r|4", "s|3"])})
    rated = vote(list(reversed(samples)), VoteConfig(), fake_ctx())
    by_index = {s.sample.index: s.reward for s in rated.scored}
    assert by_index == {0: 1.0, 1: 0.0, 2: 0.0, 3: 1.0}


class VotingEngine:
    """Hands out fixed extra answers and records what it was asked."""

    def __init__(self, answers):
        self.answers, self.calls = answers, []

    def generate(self, prompts, params, seeds, progress=None):
        self.calls.append((list(prompts), params, list(seeds)))
        return [[Completion(f"e|{a}", [], [], True) for a in self.answers[p]] for p in prompts]


def test_extra_votes_change_the_label_but_are_not_trained_on(fake_ctx, make_samples):
    samples = make_samples({"a": ("7", ["x|5", "y|7"])})  # alone: 5 wins the tie
    ctx = fake_ctx()
    ctx.engine = VotingEngine({"a=": ["7", "7", "5"]})
    ctx.sampling = SamplingParams(n=2, temperature=0.8, max_new_tokens=8)
    rated = vote(samples, VoteConfig(n_votes=5), ctx)
    assert [s.reward for s in rated.scored] == [0.0, 1.0]  # 7 has 3 of 5 votes
    assert len(rated.scored) == 2 and rated.stats["n_votes"] == 5 and rated.stats["label_accuracy"] == 1.0
    (_, params, _), = ctx.engine.calls
    assert params.n == 3 and params.temperature == 0.8


def test_min_agreement_labels_only_confident_majorities(fake_ctx, make_samples):
    samples = make_samples({
        "a": ("5", ["x|5", "y|5", "z|5", "w|7"]),   # 3/4 agree: labelled, right
        "b": ("4", ["p|3", "q|3", "r|4", "s|?"]),   # 2/4 (a malformed vote counts in the total): unlabelled
        "c": ("9", ["m|8", "n|8", "o|8", "k|9"]),   # 3/4 agree, wrong label
    })
    rated = vote(samples, VoteConfig(min_agreement=0.75), fake_ctx())
    assert [s.reward for s in rated.scored] == [1, 1, 1, 0, 0, 0, 0, 0, 1, 1, 1, 0]
    st = rated.stats
    assert abs(st["no_label_rate"] - 1 / 3) < 1e-9
    assert abs(st["label_accuracy"] - 1 / 3) < 1e-9 and st["labelled_accuracy"] == 0.5
    # agreement still covers b's own majority (2/4): a filter must not hide a collapse
    assert abs(st["agreement"] - (0.75 + 0.5 + 0.75) / 3) < 1e-9
    # at exactly the threshold the label stands
    assert [s.reward for s in vote(samples, VoteConfig(min_agreement=0.5), fake_ctx()).scored][4:8] == [1, 1, 0, 0]
