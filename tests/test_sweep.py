"""Sweep grids: axes from comma-separated values, brackets kept whole, one-line errors."""
from __future__ import annotations

import pytest

from sharpen.errors import UserError
from sharpen.sweep import expand_grid, run_name, split_values, swept_keys


def test_values_split_at_top_level_commas_only():
    assert split_values("4,8") == ["4", "8"]
    assert split_values("[1, 2],[3, 4]") == ["[1, 2]", "[3, 4]"]
    assert split_values("{kind: sft, lr: 1},grpo") == ["{kind: sft, lr: 1}", "grpo"]
    assert split_values("base") == ["base"]


def test_grid_is_the_product_of_axes_with_fixed_overrides_in_every_point():
    grid = ["sample.n=2,4", "rounds=1", "objective.lr=1e-3,5e-4,1e-4"]
    points = expand_grid(grid)
    assert len(points) == 6
    assert points[0] == ["sample.n=2", "rounds=1", "objective.lr=1e-3"]
    assert points[-1] == ["sample.n=4", "rounds=1", "objective.lr=1e-4"]
    assert all("rounds=1" in p for p in points)
    axes = swept_keys(grid)
    assert axes == ["sample.n", "objective.lr"]
    names = [run_name(p, axes) for p in points]
    assert len(set(names)) == 6 and names[0] == "sample.n=2,objective.lr=1e-3"
    assert run_name(["task.difficulty=[1, 2]"], ["task.difficulty"]) == "task.difficulty=_1,_2_"


@pytest.mark.parametrize("item, words", [("rounds", "expected key=value"), ("=1,2", "expected key=value"),
                                         ("sample.n=2,,4", "empty value"), ("sample.n=2,2", "repeats")])
def test_bad_grid_items_fail_in_one_line(item, words):
    with pytest.raises(UserError, match=words) as err:
        expand_grid([item])
    assert "\n" not in str(err.value) and item in str(err.value)


@pytest.mark.parametrize("args, words", [(["sweep", "star", "sample.n=2,,4"], "empty value"),
                                         (["sweep", "star", "sample.nn=1,2"], "sample.nn: unknown key"),
                                         (["sweep", "star", "executor=dask"], "executor: Input should be")])
def test_sweep_cli_bad_input_is_one_line_and_exit_2(capsys, monkeypatch, tmp_path, args, words):
    from tests.conftest import run_cli

    code, out, err = run_cli(capsys, monkeypatch, *args, "--out", tmp_path / "sweep")
    assert code == 2 and words in err and err.strip().count("\n") == 0
