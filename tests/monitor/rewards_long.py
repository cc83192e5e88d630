"""A deliberately bad proxy for the reward-hacking guard's test: longer answers score higher."""


def longer(completions, **kwargs):
    return [min(len(c) / 24.0, 1.0) for c in completions]
