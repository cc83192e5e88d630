from sharpen.feedback.verifier import VerifierConfig, verifier
from sharpen.registry import FEEDBACK


def test_verifier_rewards_ground_truth_and_records_answers(fake_ctx, make_samples):
    samples = make_samples({"a": ("12", ["w|12", "w|13", "w|?", "w|12h"])})
    scored = verifier(samples, VerifierConfig(), fake_ctx())
    assert [s.reward for s in scored] == [1.0, 0.0, 0.0, 0.5]
    assert [s.correct for s in scored] == [True, False, False, False]  # partial credit is not correct
    assert [s.answer for s in scored] == ["12", "13", None, "12h"]
    assert scored[3].scores == {"verifier": 0.5}
    assert [s.sample for s in scored] == samples
    assert FEEDBACK.get("verifier").fn is verifier
