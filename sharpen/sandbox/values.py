"""Plain values across a process boundary, as tagged JSON: what the code under test returns
reaches the judge only as builtin values, compared there by the builtins' own `==`.

Stdlib only and no `from __future__`: `functions.py` ships this file's source, followed by
`judge.py` or `driver.py`, into the sandbox. `encode` copies a value by the data of its
builtin base type (a `Counter` arrives as the dict it holds, a namedtuple as its tuple, an
int subclass that overrides `__eq__` as its int value); `decode` builds only None, bool,
int, float, complex, str, bytes, list, tuple, dict, set and frozenset, and rejects the rest.
"""
import json

MAX_DEPTH = 64  # nesting levels (a self-containing list stops here instead of recursing forever)
CONTAINERS = {"tuple": tuple, "set": set, "frozenset": frozenset}


def encode(value: object, depth: int = 0) -> object:
    """A JSON tree for `value`, read through builtin methods only (never its own overrides)."""
    if depth > MAX_DEPTH:
        raise ValueError(f"nested deeper than {MAX_DEPTH} levels")
    if value is None or type(value) is bool:  # bool cannot be subclassed
        return value
    if isinstance(value, int):
        return int.__int__(value)
    if isinstance(value, float):
        return float.__float__(value)
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, complex):
        z = complex.__add__(value, 0)
        return {"complex": [z.real, z.imag]}
    if isinstance(value, bytes):
        return {"bytes": bytes.hex(value)}
    if isinstance(value, list):
        return [encode(v, depth + 1) for v in list.__iter__(value)]
    if isinstance(value, dict):
        return {"dict": [[encode(k, depth + 1), encode(v, depth + 1)] for k, v in dict.items(value)]}
    for tag, kind in CONTAINERS.items():
        if isinstance(value, kind):
            return {tag: [encode(v, depth + 1) for v in kind.__iter__(value)]}
    raise TypeError(f"a {type(value).__name__} is not a plain value")


def decode(tree: object, depth: int = 0) -> object:
    """The plain value a JSON tree from `encode` describes; raises for anything else."""
    if depth > MAX_DEPTH + 1:
        raise ValueError(f"nested deeper than {MAX_DEPTH} levels")
    kind = type(tree)
    if tree is None or kind in (bool, int, float, str):
        return tree
    if kind is list:
        return [decode(v, depth + 1) for v in tree]
    if kind is dict and len(tree) == 1:
        (tag, items), = tree.items()
        if tag == "complex" and type(items) is list and len(items) == 2 and all(type(x) in (int, float) for x in items):
            return complex(*items)
        if tag == "bytes" and type(items) is str:
            return bytes.fromhex(items)
        if tag == "dict" and type(items) is list and all(type(kv) is list and len(kv) == 2 for kv in items):
            return {decode(k, depth + 1): decode(v, depth + 1) for k, v in items}
        if tag in CONTAINERS and type(items) is list:
            return CONTAINERS[tag](decode(v, depth + 1) for v in items)
    raise ValueError(f"not a plain value: {str(tree)[:80]}")


def dumps(value: object) -> str:
    """One line of text for `value` (no newline inside)."""
    return json.dumps(encode(value), separators=(",", ":"))


def loads(text: str) -> object:
    return decode(json.loads(text))
