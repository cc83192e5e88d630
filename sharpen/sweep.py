"""`sharpen sweep RECIPE key=v1,v2 ...`: a grid of overrides, one run directory per point.

An override with several comma-separated values is an axis; one with a single value is
applied to every point. Commas inside brackets or braces belong to the value
(`task.difficulty=[1, 2]` is one value), so any override `sharpen run` takes works here.
"""
from __future__ import annotations

import itertools
import re

from sharpen.errors import UserError


def split_values(raw: str) -> list[str]:
    """`a,b,[1, 2]` -> ['a', 'b', '[1, 2]']: commas at bracket depth 0 separate values."""
    values, depth, cur = [], 0, ""
    for ch in raw:
        if ch in "[{(":
            depth += 1
        elif ch in "]})":
            depth -= 1
        if ch == "," and depth == 0:
            values.append(cur.strip())
            cur = ""
        else:
            cur += ch
    values.append(cur.strip())
    return values


def expand_grid(items: list[str]) -> list[list[str]]:
    """Every combination of the axes' values, as override lists, in the order given
    (the first axis varies slowest); single-valued overrides go into every point."""
    axes: list[list[str]] = []
    for item in items:
        key, eq, raw = item.partition("=")
        if not eq or not key.strip():
            raise UserError(f"sweep override {item!r}: expected key=value or key=v1,v2,...")
        values = split_values(raw)
        if any(v == "" for v in values):
            raise UserError(f"sweep override {item!r}: an empty value; write key=v1,v2 with no empty entries")
        if len(set(values)) != len(values):
            raise UserError(f"sweep override {item!r}: a value repeats; each grid point needs its own run")
        axes.append([f"{key.strip()}={v}" for v in values])
    return [list(point) for point in itertools.product(*axes)]


def run_name(point: list[str], axes: list[str]) -> str:
    """A directory name from the point's values on the swept axes, e.g. `sample.n=4,objective.lr=0.001`."""
    last = {o.partition("=")[0].strip(): o for o in point}  # the last override of a key is the one that counts
    name = ",".join(last[k] for k in axes if k in last) or "base"
    return re.sub(r"[^A-Za-z0-9_.,=+-]", "_", name)


def swept_keys(items: list[str]) -> list[str]:
    """The keys with more than one value: what names a grid point."""
    keys = [i.partition("=")[0].strip() for i in items if len(split_values(i.partition("=")[2])) > 1]
    return list(dict.fromkeys(keys))
