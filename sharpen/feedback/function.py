"""Plug-in rewards: a reward function written for TRL or verl, used unchanged.

`feedback: {kind: function, fn: "my_pkg.rewards:accuracy"}` (or "path/to/file.py:fn").
The signature decides the convention:
- TRL (`GRPOTrainer(reward_funcs=...)`): `fn(prompts, completions, **columns) -> list[float | None]`,
  called once for the whole round; dataset columns arrive as keyword lists. The task's
  fields map to the columns `answer` (aliases `solution`, `ground_truth`), `reference`,
  `prompt_id` and every key of the prompt's `meta`.
- verl (`verl.utils.reward_score`): `compute_score(data_source, solution_str, ground_truth,
  extra_info=None) -> float | {"score": float, ...}`, called per sample.
`correct` stays the task's ground truth, so the audit measures the plug-in like any signal.
"""
from __future__ import annotations

import importlib
import importlib.util
import inspect
import numbers
from pathlib import Path
from typing import Any, Callable, Literal

from pydantic import Field, field_validator

from sharpen.errors import UserError
from sharpen.feedback.base import FeedbackConfig
from sharpen.feedback.verifier import relabel, verify
from sharpen.registry import FEEDBACK
from sharpen.types import Context, Rated, Sample

SIGNATURES = ("TRL's fn(prompts, completions, **kwargs) -> list[float]",
              "verl's compute_score(data_source, solution_str, ground_truth, extra_info=None)")


def load_function(ref: str) -> Callable[..., Any]:
    """'pkg.module:fn' or 'path/file.py:fn' -> the function; ValueError with a one-line reason."""
    mod_name, sep, attr = ref.rpartition(":")
    if not sep or not mod_name or not attr:
        raise ValueError(f"{ref!r}: expected 'module:function' or 'path/to/file.py:function'")
    try:
        if mod_name.endswith(".py"):
            path = Path(mod_name).expanduser()
            if not path.exists():
                raise ValueError(f"{ref!r}: no file {path}")
            spec = importlib.util.spec_from_file_location(f"sharpen_plugin_{path.stem}", path)
            module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
            spec.loader.exec_module(module)  # type: ignore[union-attr]
        else:
            module = importlib.import_module(mod_name)
    except ValueError:
        raise
    except Exception as exc:  # noqa: BLE001 - an import error of user code is a user error
        raise ValueError(f"{ref!r}: cannot import {mod_name} ({type(exc).__name__}: {exc})") from None
    fn = getattr(module, attr, None)
    if fn is None or not callable(fn):
        raise ValueError(f"{ref!r}: {mod_name} has no function {attr!r}")
    return fn


def convention(fn: Callable[..., Any]) -> Literal["trl", "verl"]:
    """Which library's reward signature `fn` has, by its parameter names."""
    params = inspect.signature(fn).parameters
    names = list(params)
    if names[:3] == ["data_source", "solution_str", "ground_truth"]:
        return "verl"
    if "completions" in params:
        return "trl"
    raise ValueError(f"signature {inspect.signature(fn)} is neither {SIGNATURES[0]} nor {SIGNATURES[1]}")


class FunctionConfig(FeedbackConfig):
    """Reward = a TRL- or verl-style reward function (detected from its signature)."""

    kind: Literal["function"] = "function"
    fn: str = Field(..., description="'module:function' or 'path/to/file.py:function'")

    @field_validator("fn")
    @classmethod
    def _resolves(cls, ref: str) -> str:
        convention(load_function(ref))
        return ref


def columns(samples: list[Sample], task: Any) -> dict[str, list[Any]]:
    """TRL keyword columns from the task's fields, one entry per sample."""
    cols: dict[str, list[Any]] = {"answer": [], "reference": [], "prompt_id": []}
    keys = sorted({k for s in samples for k in (s.prompt.meta or {})})
    for k in keys:
        cols.setdefault(k, [])
    for s in samples:
        cols["answer"].append(s.prompt.answer)
        cols["reference"].append(s.prompt.reference)
        cols["prompt_id"].append(s.prompt.id)
        for k in keys:
            if k not in ("answer", "reference", "prompt_id"):
                cols[k].append((s.prompt.meta or {}).get(k))
    cols["solution"] = cols["ground_truth"] = cols["answer"]
    cols["completion_ids"] = [list(s.completion.token_ids) for s in samples]
    return cols


def _call_trl(fn: Callable[..., Any], samples: list[Sample], task: Any) -> list[Any]:
    params = inspect.signature(fn).parameters
    takes_all = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    kwargs = {k: v for k, v in columns(samples, task).items() if takes_all or k in params}
    if "prompts" in params or takes_all:
        kwargs["prompts"] = [s.prompt.text for s in samples]
    return list(fn(completions=[s.text for s in samples], **kwargs))


def _call_verl(fn: Callable[..., Any], samples: list[Sample], task: Any) -> list[Any]:
    out = []
    for s in samples:
        extra = {"prompt": s.prompt.text, "prompt_id": s.prompt.id, "index": s.index, **(s.prompt.meta or {})}
        r = fn(getattr(task, "name", "task"), s.text, s.prompt.answer, extra)
        out.append(r.get("score") if isinstance(r, dict) else r)
    return out


def call_reward(ref: str, samples: list[Sample], task: Any) -> tuple[list[float], int]:
    """(rewards, how many the function left as None -> 0); every failure is a UserError naming `ref`."""
    try:
        fn = load_function(ref)
        kind = convention(fn)
    except ValueError as exc:
        raise UserError(f"feedback.fn {exc}") from None
    try:
        raw = (_call_trl if kind == "trl" else _call_verl)(fn, samples, task)
    except Exception as exc:  # noqa: BLE001 - the user's function failed: say so in one line
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise UserError(f"feedback.fn {ref!r}: raised {type(exc).__name__}: {msg}") from None
    if len(raw) != len(samples):
        raise UserError(f"feedback.fn {ref!r}: returned {len(raw)} rewards for {len(samples)} samples")
    bad = next((r for r in raw if r is not None and (not isinstance(r, numbers.Real) or isinstance(r, bool))), None)
    if bad is not None:
        raise UserError(f"feedback.fn {ref!r}: returned {bad!r} ({type(bad).__name__}); rewards must be numbers or None")
    return [float(r) if r is not None else 0.0 for r in raw], sum(r is None for r in raw)


@FEEDBACK.register("function", FunctionConfig)
def function(samples: list[Sample], cfg: FunctionConfig, ctx: Context) -> Rated:
    """A TRL or verl reward function, called unchanged (the signature picks the convention)."""
    rewards, none = call_reward(cfg.fn, samples, ctx.task)
    return Rated(relabel(verify(samples, ctx.task), rewards, cfg.signal_name()), {"none": none})
