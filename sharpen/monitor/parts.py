"""Importing this module registers every built-in monitor in `sharpen.registry.MONITORS`."""
from sharpen.monitor import exploitation, exploration, guards, training  # noqa: F401
