"""A user's reward function as feedback, unchanged: a TRL reward function or a verl compute_score.

    feedback: {kind: function, fn: "my_rewards:accuracy_reward"}      # importable module
    feedback: {kind: function, fn: "rewards/verl_math.py:compute_score"}  # a file, relative to the cwd

The convention is read from the signature, so code written for TRL's GRPOTrainer or verl's
reward manager is called exactly as those call it. TRL: one batched call by keyword, the
task's fields as dataset columns (answer, its aliases solution and ground_truth, reference,
prompt_id, every Prompt.meta key); a None reward is 0, counted in the statistics. verl: one
call per sample; a dict's "score". `correct` still comes from the task, for the audit.
"""
from __future__ import annotations

import importlib
import importlib.util
import inspect
import math
import numbers
import os
import sys
import traceback
from pathlib import Path
from typing import Any, Callable, ClassVar, Literal

from pydantic import Field, field_validator

from sharpen.errors import UserError, user_file
from sharpen.feedback.base import FeedbackConfig
from sharpen.feedback.verifier import relabel, verify
from sharpen.registry import FEEDBACK
from sharpen.types import Context, Rated, Sample

SIGNATURES = ("a TRL reward function (prompts, completions, **kwargs) -> list[float] "
              "nor a verl compute_score(data_source, solution_str, ground_truth, extra_info=None)")
VERL_ARGS = ("data_source", "solution_str", "ground_truth", "extra_info")

_files: dict[tuple[str, int], Any] = {}  # (absolute path, mtime) -> module: a file is executed once


def _import(module: str) -> Any:
    """`package.module`, also from the working directory: a console script's sys.path lacks it,
    and users expect `my_rewards.py` next to their recipe to import (as uvicorn does)."""
    cwd = os.path.abspath(os.getcwd())
    if cwd not in sys.path and "" not in sys.path:
        sys.path.append(cwd)
    return importlib.import_module(module)


def _load_file(file: Path) -> Any:
    key = (str(file), file.stat().st_mtime_ns)
    if key not in _files:
        name = f"sharpen_user_reward_{abs(hash(key))}"
        spec = importlib.util.spec_from_file_location(name, file)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses and pickling look the module up by name
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[name]
            raise
        _files[key] = module
    return _files[key]


def load_function(spec: str) -> Callable[..., Any]:
    """"module:function" or "file.py:function" -> the function; ValueError (one line) if not."""
    where, sep, attr = spec.rpartition(":")
    if not sep or not where or not attr:
        raise ValueError("expected 'package.module:function' or 'path/to/file.py:function'")
    file = Path(where).resolve() if where.endswith(".py") or "/" in where or os.sep in where else None
    if file is not None:
        try:
            user_file(where, "file", "fix the path before the ':'")
        except UserError as err:
            raise ValueError(str(err)) from None
    try:
        obj = _load_file(file) if file is not None else _import(where)
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - the user's module failed to import: why, in one line
        raise ValueError(f"cannot import {where!r} ({_one_line_exc(exc)})") from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ValueError(f"{where!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise ValueError(f"{attr!r} is a {type(obj).__name__}, not a function")
    return obj


def convention(fn: Callable[..., Any]) -> Literal["trl", "verl"] | None:
    """"verl" if it takes `solution_str`, "trl" if it takes `completions`/`prompts` or only
    **kwargs (both call by keyword, so positional-only parameters rule it out), else None."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return None
    if any(p.kind == p.POSITIONAL_ONLY and p.default is p.empty for p in params.values()):
        return None
    if "solution_str" in params:
        return "verl"
    if "completions" in params or "prompts" in params or (params and all(p.kind == p.VAR_KEYWORD for p in params.values())):
        return "trl"
    return None


def _one_line_exc(exc: BaseException) -> str:
    """"KeyError: 'solution' (rewards.py:12)": the first line of the message and the innermost
    frame, since the traceback itself is not shown."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    ours = (__file__, os.path.dirname(importlib.__file__))
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if not f.filename.startswith(("<", *ours))]
    text = type(exc).__name__ + (f": {lines[0]}" if lines else "")
    return text + (f" ({Path(frames[-1].filename).name}:{frames[-1].lineno})" if frames else "")


class FunctionConfig(FeedbackConfig):
    """Reward = a user's TRL reward function or verl compute_score, called as those frameworks do."""

    default_threshold: ClassVar[float | None] = None  # any float: audited against its prompt's mean
    kind: Literal["function"] = "function"
    fn: str = Field(..., description="'package.module:function' or 'path/to/file.py:function' (relative to the "
                                     "working directory): a TRL reward function (prompts, completions, **kwargs) "
                                     "or a verl compute_score(data_source, solution_str, ground_truth, extra_info=None)")
    format: Literal["standard", "conversational"] = Field(
        "standard", description="TRL: prompts and completions as plain text (standard) or as chat messages "
                                "[{role, content}] (conversational, what TRL's built-in reward functions expect)")

    @field_validator("fn")
    @classmethod
    def _resolvable(cls, spec: str) -> str:
        fn = load_function(spec)
        if convention(fn) is None:
            raise ValueError(f"{_describe(fn)} is neither {SIGNATURES}")
        return spec


def _describe(fn: Callable[..., Any]) -> str:
    try:
        return f"{getattr(fn, '__name__', 'function')}{inspect.signature(fn)}"
    except (TypeError, ValueError):
        return getattr(fn, "__name__", repr(fn))


def _accepts(fn: Callable[..., Any], kwargs: dict[str, Any], where: str) -> dict[str, Any]:
    """The keywords `fn` takes (all of them if it has **kwargs); a required one missing is an error."""
    params = inspect.signature(fn).parameters
    if any(p.kind == p.VAR_KEYWORD for p in params.values()):
        return kwargs
    missing = [n for n, p in params.items() if p.default is p.empty and p.kind != p.VAR_POSITIONAL and n not in kwargs]
    if missing:
        raise UserError(f"{where}: needs {', '.join(map(repr, missing))}, which this task does not provide; "
                        f"available: {', '.join(kwargs)}")
    return {k: v for k, v in kwargs.items() if k in params}


def trl_columns(samples: list[Sample]) -> dict[str, list[Any]]:
    """Dataset columns as TRL passes them, one value per sample: answer (and its aliases
    solution, ground_truth), reference, prompt_id, then every Prompt.meta key (a meta key
    wins over an alias of the same name: it is the dataset's own column)."""
    cols: dict[str, list[Any]] = {
        "answer": [s.prompt.answer for s in samples],
        "solution": [s.prompt.answer for s in samples],
        "ground_truth": [s.prompt.answer for s in samples],
        "reference": [s.prompt.reference for s in samples],
        "prompt_id": [s.prompt.id for s in samples],
    }
    for key in dict.fromkeys(k for s in samples for k in s.prompt.meta):
        cols[key] = [s.prompt.meta.get(key) for s in samples]
    return cols


def _call(fn: Callable[..., Any], kwargs: dict[str, Any], where: str) -> Any:
    try:
        return fn(**kwargs)
    except UserError:
        raise
    except Exception as exc:  # noqa: BLE001 - the user's code: one line, with where it raised
        raise UserError(f"{where}: raised {_one_line_exc(exc)}") from None


def _number(value: Any, i: int, where: str) -> float:
    if isinstance(value, numbers.Real) or (hasattr(value, "item") and getattr(value, "ndim", 1) == 0):
        x = float(value)
        if math.isfinite(x):
            return x
    raise UserError(f"{where}: returned {value!r:.40} for sample {i}; expected a finite number")


def call_trl(fn: Callable[..., Any], samples: list[Sample], cfg: FunctionConfig, where: str,
             metrics: dict[str, list[float]]) -> tuple[list[float], int]:
    """One batched call as GRPOTrainer makes it; (rewards, how many were None -> 0)."""
    prompts: list[Any] = [s.prompt.text for s in samples]
    completions: list[Any] = [s.text for s in samples]
    if cfg.format == "conversational":
        prompts = [[{"role": "user", "content": p}] for p in prompts]
        completions = [[{"role": "assistant", "content": c}] for c in completions]
    kwargs = {"prompts": prompts, "completions": completions,
              "completion_ids": [list(s.completion.token_ids) for s in samples], **trl_columns(samples),
              "log_metric": lambda name, value: metrics.setdefault(str(name), []).append(float(value)),
              "log_extra": lambda column, values: None}
    out = _call(fn, _accepts(fn, kwargs, where), where)
    if isinstance(out, (str, bytes, dict)) or not hasattr(out, "__len__"):
        raise UserError(f"{where}: returned {type(out).__name__}; expected a list of {len(samples)} floats")
    out = list(out)
    if len(out) != len(samples):
        raise UserError(f"{where}: returned {len(out)} rewards for {len(samples)} samples")
    return [0.0 if r is None else _number(r, i, where) for i, r in enumerate(out)], sum(r is None for r in out)


def call_verl(fn: Callable[..., Any], samples: list[Sample], task_name: str, where: str,
              metrics: dict[str, list[float]]) -> list[float]:
    """One call per sample, by keyword as verl's reward manager calls it; a dict result gives
    its "score" (its other numeric keys are averaged into the statistics, as verl logs them)."""
    rewards = []
    for i, s in enumerate(samples):
        extra = {"prompt": s.prompt.text, "prompt_id": s.prompt.id, "index": s.index, **s.prompt.meta}
        kwargs = dict(zip(VERL_ARGS, (task_name, s.text, s.prompt.answer, extra)))
        out = _call(fn, _accepts(fn, kwargs, where), where)
        if isinstance(out, dict):
            if "score" not in out:
                keys = ", ".join(map(str, out))
                raise UserError(f"{where}: returned a dict without a 'score' key for sample {i} (keys: {keys})")
            for k, v in out.items():
                if k != "score" and isinstance(v, numbers.Real):
                    metrics.setdefault(str(k), []).append(float(v))
            out = out["score"]
        rewards.append(_number(out, i, where))
    return rewards


@FEEDBACK.register("function", FunctionConfig)
def function_feedback(samples: list[Sample], cfg: FunctionConfig, ctx: Context) -> Rated:
    """A user's TRL reward function or verl compute_score, called unchanged."""
    where = f"feedback.fn {cfg.fn!r}"
    try:
        fn = load_function(cfg.fn)
    except ValueError as err:
        raise UserError(f"{where}: {err}") from None
    kind = convention(fn)
    metrics: dict[str, list[float]] = {}
    none = 0
    if kind == "trl":
        rewards, none = call_trl(fn, samples, cfg, where, metrics)
    elif kind == "verl":
        rewards = call_verl(fn, samples, str(getattr(ctx.task, "name", "")), where, metrics)
    else:
        raise UserError(f"{where}: {_describe(fn)} is neither {SIGNATURES}")
    stats: dict[str, Any] = {"convention": kind, "none": none}
    stats.update({k: sum(v) / len(v) for k, v in metrics.items() if v and k not in stats})  # log_metric, verl's extra keys
    return Rated(relabel(verify(samples, ctx.task), rewards, cfg.signal_name()), stats)
