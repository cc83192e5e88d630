"""A verl reward function (`verl.utils.reward_score` style, like its gsm8k scorer), as a verl
user writes it: one call per sample, a format score for a well-formed wrong answer."""
import re


def compute_score(data_source, solution_str, ground_truth, extra_info=None, format_score=0.1, score=1.0):
    answer = solution_str.strip().rsplit("|", 1)[-1].strip()
    if not re.fullmatch(r"\d+", answer):
        return {"score": 0.0, "acc": False}
    correct = answer == ground_truth
    return {"score": score if correct else format_score, "acc": correct}
