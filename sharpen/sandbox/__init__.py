"""A jail for model-generated code: namespaces, rlimits, an unprivileged uid, capped output."""
from sharpen.sandbox.run import ExecResult, SandboxUnavailable, missing_features, run_many, run_python

__all__ = ["ExecResult", "SandboxUnavailable", "missing_features", "run_many", "run_python"]
