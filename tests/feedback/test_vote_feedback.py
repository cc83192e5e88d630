from sharpen.feedback.vote import VoteConfig, vote


def test_majority_answer_is_the_pseudo_label(fake_ctx, make_samples):
    samples = make_samples({
        "a": ("7", ["x|5", "y|5", "z|7", "|?"]),   # majority 5 is wrong
        "b": ("4", ["p|3", "q|4", "r|4", "s|3"]),   # tie 3/4: the first seen (3) wins
        "c": ("1", ["|?", "|?"]),                    # no answer at all: no label
        "d": ("9", ["m|9", "n|9", "o|8"]),
    })
    scored = vote(samples, VoteConfig(), fake_ctx())
    assert [s.reward for s in scored] == [1, 1, 0, 0, 1, 0, 0, 1, 0, 0, 1, 1, 0]
    assert [s.correct for s in scored][:4] == [False, False, True, False]  # ground truth kept for monitoring
    assert [s.scores["label_correct"] for s in scored] == [0.0] * 4 + [0.0] * 4 + [0.0] * 2 + [1.0] * 3
    assert scored[0].scores["vote"] == 1.0 and scored[0].scores["verifier"] == 0.0
