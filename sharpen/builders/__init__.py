"""Builders: scored samples -> training data (SFT sets, preference pairs, RL groups).

Importing the modules runs their `@BUILDERS.register` decorators."""
from sharpen.builders import cream, groups, pairs, reference, sft, temporal  # noqa: F401
