"""A reward function written for TRL's GRPOTrainer, exactly as a TRL user writes it."""


def accuracy_reward(completions, answer, **kwargs):
    """1.0 when the text after the last '|' equals the dataset's `answer` column."""
    return [1.0 if c.strip().split("|")[-1] == a else 0.0 for c, a in zip(completions, answer)]


def length_reward(prompts, completions, **kwargs):
    return [-len(c) / 100 for c in completions]


def sometimes_none(completions, **kwargs):
    return [None if i % 2 else 1.0 for i, _ in enumerate(completions)]


def short_list(completions, **kwargs):
    return [1.0]


def raises(completions, **kwargs):
    raise KeyError("solution column missing")


def returns_text(completions, **kwargs):
    return ["good" for _ in completions]


def not_a_reward(x):
    return x
