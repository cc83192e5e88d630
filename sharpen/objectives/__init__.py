"""Objectives: train the policy in place on a builder's data (SFT, DPO family, GRPO family).

Importing the modules runs their `@OBJECTIVES.register` decorators."""
from sharpen.objectives import dpo, grpo, sft  # noqa: F401
