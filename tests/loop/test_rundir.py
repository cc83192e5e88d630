import json
import multiprocessing as mp
import os

import pytest

from sharpen.errors import UserError
from sharpen.rundir import RunDir, atomic_dir, atomic_json, atomic_write


def test_atomic_write_leaves_no_temp_and_replaces(tmp_path):
    p = tmp_path / "a" / "m.json"
    atomic_json(p, {"x": 1})
    atomic_json(p, {"x": 2})
    assert json.loads(p.read_text()) == {"x": 2}
    assert [f.name for f in p.parent.iterdir()] == ["m.json"]


def test_atomic_dir_renames_filled_dir(tmp_path):
    def fill(d):
        (d / "config.json").write_text("{}")

    atomic_dir(tmp_path / "ckpt", fill)
    assert (tmp_path / "ckpt" / "config.json").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]


def test_round_complete_only_with_metrics(tmp_path):
    rd = RunDir(tmp_path)
    atomic_json(rd.metrics_path(0), {"round": 0})
    (rd.round_dir(1)).mkdir(parents=True)
    (rd.round_dir(1) / "samples.jsonl").write_text("partial")
    (rd.round_dir(1) / ".tmp-abc").write_text("half")
    assert rd.first_incomplete_round(3) == 1
    removed = rd.clean_partial()
    assert not rd.round_dir(1).exists() and removed


def _hold(path, ready, release):
    with RunDir(path).locked():
        ready.set()
        release.wait(10)


def test_second_process_is_refused_and_dead_owner_lock_is_taken_over(tmp_path):
    ctx = mp.get_context("fork")
    ready, release = ctx.Event(), ctx.Event()
    p = ctx.Process(target=_hold, args=(tmp_path, ready, release))
    p.start()
    assert ready.wait(10)
    with pytest.raises(UserError, match=f"in use by pid {p.pid}"):
        with RunDir(tmp_path).locked():
            pass
    p.kill()  # SIGKILL: the kernel releases the flock
    p.join()
    with RunDir(tmp_path).locked():
        assert (tmp_path / "run.lock").read_text().startswith(f"pid {os.getpid()}")


def test_unwritable_dir_is_a_user_error(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root ignores file permissions; the bad-input suite covers a read-only mount")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    with pytest.raises(UserError, match="not writable"):
        atomic_write(ro / "x", "y")
