"""Reward functions written for TRL's GRPOTrainer, as a TRL user writes them: no sharpen
import, dataset columns as keyword lists, None for a sample a function does not score."""
import re


def extract_answer(text):
    """The arithmetic task's answer: the digits after the last '|' (an optional scratchpad comes first)."""
    return text.strip().rsplit("|", 1)[-1].strip()


def accuracy_reward(completions, answer, **kwargs):
    """1.0 for the right answer, else the share of digits in the right place (partial credit)."""
    rewards = []
    for completion, gold in zip(completions, answer):
        pred = extract_answer(completion)
        if pred == gold:
            rewards.append(1.0)
        elif re.fullmatch(r"\d+", pred):
            rewards.append(sum(p == g for p, g in zip(pred, gold)) / max(len(gold), len(pred)) / 2)
        else:
            rewards.append(0.0)
    return rewards


def add_only_reward(prompts, completions, op, solution, **kwargs):
    """Scores additions only (a `meta` column); None leaves the others unscored."""
    return [float(extract_answer(c) == s) if o == "add" else None for c, s, o in zip(completions, solution, op)]
