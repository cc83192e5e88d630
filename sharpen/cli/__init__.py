"""`sharpen` command line: a thin typer layer over `sharpen.api` (commands in runs.py and
evals.py, the entry point and its error handling in main.py)."""
from sharpen.cli import evals, rm, runs  # noqa: F401  (each registers its commands on the app)
from sharpen.cli.app import SELECT_METHODS, app
from sharpen.cli.evals import eval_config, task_config
from sharpen.cli.main import main

__all__ = ["SELECT_METHODS", "app", "eval_config", "main", "task_config"]
