"""The plain-value codec between the function under test and the judge: exact round trips,
copies by builtin data (never a value's own overrides), and nothing but builtins out."""
from __future__ import annotations

import math
from collections import Counter, OrderedDict, defaultdict, namedtuple

import pytest

from sharpen.sandbox.values import decode, dumps, encode, loads

PLAIN = [None, True, False, 0, -7, 10**40, 1.5, -0.0, float("inf"), "", "héllo\n", b"\x00\xff", 2 + 3j,
         [1, [2.0, "x"]], (1, (2,)), (), {"a": 1, (1, 2): [3], 4: None}, {1, "a"}, frozenset({(1, 2)}), [[[]]]]


@pytest.mark.parametrize("value", PLAIN, ids=repr)
def test_plain_values_round_trip_with_their_exact_types(value):
    back = loads(dumps(value))
    assert back == value and type(back) is type(value)
    assert "\n" not in dumps(value)
    if isinstance(value, (list, tuple)):
        assert [type(v) for v in back] == [type(v) for v in value]


def test_ints_and_floats_stay_apart_and_nan_stays_nan():
    assert [type(v) for v in loads(dumps([1, 1.0, True]))] == [int, float, bool]
    assert math.isnan(loads(dumps(float("nan"))))


def test_subclasses_arrive_as_the_builtin_data_they_hold():
    class AlwaysEqual(int):
        __eq__ = lambda self, other: True  # noqa: E731
        __hash__ = int.__hash__

        def __int__(self):
            return 99

    class Liar(str):
        def __str__(self):
            return "forged"

        def __iter__(self):
            return iter("forged")

    class Sneaky(list):
        def __iter__(self):
            return iter([5])

    point = namedtuple("point", "x y")
    got = loads(dumps([AlwaysEqual(3), Liar("ab"), Sneaky([1, 2]), Counter("aab"), OrderedDict(a=1),
                       defaultdict(int, b=2), point(1, 2)]))
    assert got == [3, "ab", [1, 2], {"a": 2, "b": 1}, {"a": 1}, {"b": 2}, (1, 2)]
    assert [type(v) for v in got] == [int, str, list, dict, dict, dict, tuple]
    assert got[0] != 4  # compared by int's own ==, not the override


def test_what_is_not_a_plain_value_is_refused():
    loop: list = []
    loop.append(loop)
    for value in (object(), (i for i in range(3)), len, Exception("x"), loop, {1: object()}):
        with pytest.raises((TypeError, ValueError)):
            encode(value)


@pytest.mark.parametrize("tree", [
    {"eval": "1"}, {"tuple": [1], "set": [2]}, {}, {"bytes": 5}, {"complex": ["1", 2]},
    {"dict": [[1]]}, {"dict": [[[1], 2]]}, {"set": "abc"}, [{"object": None}],
])
def test_decode_builds_nothing_but_builtins(tree):
    with pytest.raises((TypeError, ValueError)):
        decode(tree)
