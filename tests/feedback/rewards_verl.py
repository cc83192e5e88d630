"""A verl reward function (`verl.utils.reward_score` style), exactly as a verl user writes it."""


def compute_score(data_source, solution_str, ground_truth, extra_info=None):
    answer = solution_str.strip().split("|")[-1]
    return {"score": 1.0 if answer == ground_truth else 0.0, "data_source": data_source}


def float_score(data_source, solution_str, ground_truth, extra_info=None):
    assert extra_info["prompt_id"] and "index" in extra_info
    return 0.5 if solution_str.endswith(ground_truth or "") else 0.0
