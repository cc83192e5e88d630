"""`key=value` overrides of a raw recipe mapping, and how a message may show them.

An override's value is YAML (`4`, `[1, 3]`, `null`), except a key's (`engine.api_key=...`),
which is taken as written and never echoed: a message shows `engine.api_key=***`.
"""
from __future__ import annotations

from typing import Any

import yaml

from sharpen.errors import UserError

SECRET_FIELD = "api_key"  # every config's literal key is this field, its variable `api_key_env`


def parse_value(text: str) -> Any:
    """An override's value is YAML: `4`, `0.8`, `[1, 3]`, `base`, `null`."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def is_secret_key(key: str) -> bool:
    """`engine.api_key`, `feedback.api_key_env`, ...: a value never echoed in a message (a key
    pasted into api_key_env too) nor parsed as YAML."""
    return key.strip().rsplit(".", 1)[-1] in (SECRET_FIELD, SECRET_FIELD + "_env")


def secret_override_keys() -> tuple[str, ...]:
    """What `sharpen resume` accepts besides where and how long: a key is never written to
    the run, so a resumed run is given it again (or reads the variable api_key_env names)."""
    return ("engine.api_key", "feedback.api_key")


def masked_override(item: str) -> str:
    """An override as a message may show it: `engine.api_key=***`, never the key."""
    key, eq, _ = item.partition("=")
    return f"{key}=***" if eq and is_secret_key(key) else item


def apply_overrides(data: dict[str, Any], overrides: list[str], shorthand: dict[str, str] | None = None) -> dict[str, Any]:
    """Apply `a.b.c=value` overrides to a raw recipe mapping (in place). `shorthand`: parts
    a recipe may give as one string (`task: arithmetic` is `task: {name: arithmetic}`)."""
    shorthand = shorthand or {}
    for item in overrides:
        if "=" not in item:
            raise UserError(f"override {item!r}: expected key=value, e.g. rounds=1 or sample.n=4")
        key, _, raw = item.partition("=")
        parts = key.strip().split(".")
        shown = masked_override(item)
        if not all(parts):
            raise UserError(f"override {shown!r}: empty key segment")
        node = data
        for p in parts[:-1]:
            cur = node.get(p)
            if isinstance(cur, str) and p in shorthand:
                cur = {shorthand[p]: cur}
            if cur is None:
                cur = {}
            if not isinstance(cur, dict):
                raise UserError(f"override {shown!r}: {p} is not a section")
            node[p] = cur
            node = cur
        node[parts[-1]] = raw if is_secret_key(key) else parse_value(raw)
    return data


def blame_override(err: UserError, overrides: list[str]) -> UserError:
    """Name the override a bad field came from (`override 'sample.n=-1': sample.n: ...`),
    not the recipe file, which may be fine."""
    if err.field is None:
        return err
    for item in reversed(overrides):  # the last override of a key is the one that counts
        key = item.partition("=")[0].strip()
        if any(f == key or f.startswith(key + ".") or key.startswith(f + ".") for f in (err.field, *err.related)):
            return UserError(f"override {masked_override(item)!r}: {err.field}: {err.detail}", field=err.field,
                             detail=err.detail)
    return err
