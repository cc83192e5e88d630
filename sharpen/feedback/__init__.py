"""Feedback: scorers mapping samples to rewards (verifier, vote, likelihood, self-certainty).

Importing the modules runs their `@FEEDBACK.register` decorators."""
from sharpen.feedback import co_vote, combine, function, harmony, judge, likelihood, reward_model, self_certainty, verifier, vote  # noqa: F401
