"""Learned verifiers: outcome reward models trained on a run's own verified samples (or a
user's preference pairs), with a held-out split by prompt. `sharpen rm train` is
`train.train_reward_model`; `model.RewardModel` loads and scores."""
