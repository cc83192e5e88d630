"""Every user mistake: one `error:` line naming the problem and where, exit code 2,
no traceback, and nothing half-written."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sharpen.cli import main
from tests.conftest import run_cli

MICRO = ["rounds=1", "sample.n=2", "sample.prompts_per_round=8", "eval.n=8", "eval.k=2",
         "sample.max_new_tokens=12", "eval.max_new_tokens=12"]


cli = run_cli


def one_line_error(code: int, err: str, *needles: str) -> str:
    assert code == 2, err
    lines = [l for l in err.strip().splitlines() if l.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("error: "), err
    assert "Traceback" not in err
    for n in needles:
        assert n in lines[0], (n, lines[0])
    return lines[0]


def no_half_rounds(root: Path) -> None:
    """A run stopped mid-way keeps only complete rounds: no temp files, no round without metrics.json."""
    assert root.is_dir(), root
    assert not [p for p in root.rglob("*") if p.name.startswith(".tmp-")]
    for d in (root / "rounds").iterdir():
        assert (d / "metrics.json").exists(), f"half-written round {d}"


def no_run_directory(root: Path) -> None:
    """A bad input leaves nothing: no run directory, so no config.yaml, lock or half round."""
    assert not root.exists(), sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.mark.parametrize("overrides,needles", [
    (["foo=3"], ["foo", "unknown key"]),
    (["sample.nn=4"], ["sample.nn", "unknown key"]),
    (["sample.n=abc"], ["sample.n", "integer"]),
    (["sample.n=-1"], ["sample.n", "greater than 0"]),
    (["rounds=0"], ["rounds", "greater than 0"]),
    (["objective.lr=fast"], ["objective.lr"]),
    (["objective.kind=adam"], ["objective.kind", "unknown", "sft"]),
    (["task.name=chess"], ["task.name", "chess"]),
    (["task.difficulty=[5, 2]"], ["task"]),
    (["sample.temperature=-0.5"], ["sample.temperature"]),
    (["eval.splits=[test]"], ["eval.splits"]),
    (["rounds"], ["rounds", "key=value"]),
    (["sample.split=holdout"], ["sample.split", "verifier", "label-free"]),  # star: test-time training on answers
])
def test_bad_recipe_override(capsys, monkeypatch, tmp_path, overrides, needles):
    code, _, err = cli(capsys, monkeypatch, "run", "star", *overrides, "--out", tmp_path / "run")
    one_line_error(code, err, *needles, f"override {overrides[0]!r}")  # the override, not star.yaml, is at fault
    assert "star.yaml" not in err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("recipe,overrides", [
    ("self_harmony", ["task={name: code}", "policy.path=seed:code"]),
    ("co_reward", ["task={name: code}", "policy.path=seed:code"]),
    ("ttrl", ["task={name: code}", "policy.path=seed:code", "feedback={kind: vote, audit: [harmony]}"]),
])
def test_rephrasing_feedback_on_a_task_that_cannot_rephrase(capsys, monkeypatch, tmp_path, recipe, overrides):
    code, _, err = cli(capsys, monkeypatch, "run", recipe, *overrides, "--out", tmp_path / "run")
    one_line_error(code, err, "feedback.kind", "'code'", "paraphrases")
    assert not (tmp_path / "run").exists()


def test_recipe_missing_task(capsys, monkeypatch, tmp_path):
    f = tmp_path / "r.yaml"
    f.write_text("name: x\nbuild: {kind: sft}\nobjective: {kind: sft}\n")
    code, _, err = cli(capsys, monkeypatch, "run", f)
    one_line_error(code, err, str(f), "task", "missing")


def test_recipe_bad_yaml_names_line(capsys, monkeypatch, tmp_path):
    f = tmp_path / "r.yaml"
    f.write_text("name: x\ntask: {name: arithmetic\nbuild: sft\n")
    code, _, err = cli(capsys, monkeypatch, "run", f)
    one_line_error(code, err, str(f), "YAML")


def test_recipe_not_a_mapping(capsys, monkeypatch, tmp_path):
    f = tmp_path / "r.yaml"
    f.write_text("- just\n- a list\n")
    code, _, err = cli(capsys, monkeypatch, "run", f)
    one_line_error(code, err, str(f), "mapping")


def test_recipe_file_missing(capsys, monkeypatch, tmp_path):
    code, _, err = cli(capsys, monkeypatch, "run", tmp_path / "nope.yaml")
    one_line_error(code, err, "nope.yaml", "star")


def test_one_line_error_rejects_what_it_must():
    """The checker itself can fail: a traceback, two lines, another exit code, a missing needle."""
    for code, err, needles in [(2, "Traceback (most recent call last):\n  boom\n", ()), (1, "error: x\n", ()),
                               (2, "error: a\nerror: b\n", ()), (2, "Error: x\n", ()), (2, "error: x\n", ("y",))]:
        with pytest.raises(AssertionError):
            one_line_error(code, err, *needles)


@pytest.mark.parametrize("content,needles", [
    ('{"prompt": "1+1", "answer": "2"}\n{"prompt": "2+2", "answer": "4"}\n{bad json\n', [":3", "JSON"]),
    ('{"prompt": "1+1", "answer": "2"}\n{"prompt": "2+2"}\n', [":2", "answer"]),
    ("", ["empty"]),
    ('{"prompt": "1+1", "answer": "2", "split": "test"}\n', [":1", "split"]),
])
def test_bad_jsonl_task_file(capsys, monkeypatch, tmp_path, tiny_checkpoint, content, needles):
    f = tmp_path / "data.jsonl"
    f.write_text(content)
    code, _, err = cli(capsys, monkeypatch, "run", "star", "task.name=jsonl", f"task.path={f}", *MICRO,
                       f"policy.path={tiny_checkpoint}", "--out", tmp_path / "run")
    one_line_error(code, err, "data.jsonl", *needles)
    no_run_directory(tmp_path / "run")


def test_jsonl_file_missing(capsys, monkeypatch, tmp_path, tiny_checkpoint):
    code, _, err = cli(capsys, monkeypatch, "run", "star", "task.name=jsonl", f"task.path={tmp_path}/none.jsonl",
                       *MICRO, f"policy.path={tiny_checkpoint}", "--out", tmp_path / "run")
    one_line_error(code, err, "none.jsonl")
    no_run_directory(tmp_path / "run")


def test_checkpoint_missing(capsys, monkeypatch, tmp_path):
    code, _, err = cli(capsys, monkeypatch, "run", "star", *MICRO, f"policy.path={tmp_path}/gone", "--out", tmp_path / "run")
    one_line_error(code, err, "policy.path", "gone")
    no_run_directory(tmp_path / "run")
    code, _, err = cli(capsys, monkeypatch, "eval", tmp_path / "gone", "--prompts", "4", "--k", "0")
    one_line_error(code, err, "gone")


def test_checkpoint_without_config(capsys, monkeypatch, tmp_path):
    (tmp_path / "ck").mkdir()
    code, _, err = cli(capsys, monkeypatch, "eval", tmp_path / "ck", "--prompts", "4", "--k", "0")
    one_line_error(code, err, "ck", "config.json")


def test_checkpoint_with_corrupt_weights(capsys, monkeypatch, tmp_path, tiny_checkpoint):
    import shutil

    ck = tmp_path / "ck"
    shutil.copytree(tiny_checkpoint, ck)
    w = ck / "model.safetensors"
    w.write_bytes(w.read_bytes()[: w.stat().st_size // 3])
    code, _, err = cli(capsys, monkeypatch, "eval", ck, "--prompts", "4", "--k", "0")
    one_line_error(code, err, "ck")
    code, _, err = cli(capsys, monkeypatch, "run", "star", *MICRO, f"policy.path={ck}", "--out", tmp_path / "run")
    one_line_error(code, err, "ck")
    no_run_directory(tmp_path / "run")


def test_resume_of_a_non_run_directory(capsys, monkeypatch, tmp_path):
    code, _, err = cli(capsys, monkeypatch, "resume", tmp_path)
    one_line_error(code, err, str(tmp_path), "config.yaml")


def test_resume_refuses_recipe_changes(capsys, monkeypatch, tmp_path, tiny_checkpoint):
    run = tmp_path / "run"
    code, _, err = cli(capsys, monkeypatch, "run", "star", *MICRO, f"policy.path={tiny_checkpoint}", "--out", run)
    assert code == 0, err
    code, _, err = cli(capsys, monkeypatch, "resume", run, "sample.n=3")
    one_line_error(code, err, "sample.n", "rounds")


def _mount_tmpfs(path: Path, opts: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    return subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(path)], capture_output=True).returncode == 0


@pytest.fixture
def mount_point(tmp_path):
    mp = tmp_path / "mnt"
    yield mp
    subprocess.run(["umount", str(mp)], capture_output=True)


def test_read_only_run_directory(capsys, monkeypatch, mount_point, tiny_checkpoint):
    if os.geteuid() != 0 or not _mount_tmpfs(mount_point, "size=1m,ro"):
        pytest.skip("needs root to mount a read-only tmpfs (root ignores chmod)")
    code, _, err = cli(capsys, monkeypatch, "run", "star", *MICRO, f"policy.path={tiny_checkpoint}", "--out", mount_point / "run")
    one_line_error(code, err, "not writable", "run.out")


def test_full_disk_run_directory(capsys, monkeypatch, mount_point, tiny_checkpoint):
    if os.geteuid() != 0 or not _mount_tmpfs(mount_point, "size=600k"):
        pytest.skip("needs root to mount a tiny tmpfs")
    run = mount_point / "run"
    code, _, err = cli(capsys, monkeypatch, "run", "star", *MICRO, f"policy.path={tiny_checkpoint}", "--out", run)
    one_line_error(code, err, "no space left", "run.out")
    no_half_rounds(run)  # the disk filled in round 1's checkpoint: round 0 stays, complete


def test_run_directory_in_use(capsys, monkeypatch, tmp_path, tiny_checkpoint):
    import fcntl

    run = tmp_path / "run"
    run.mkdir()
    fd = os.open(run / "run.lock", os.O_RDWR | os.O_CREAT)
    os.write(fd, b"pid 424242 on elsewhere")
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        import multiprocessing as mp

        # flock is per open file description: a child process (not this one) must see it held
        ctx = mp.get_context("fork")
        q = ctx.Queue()

        def child():
            try:
                from sharpen.rundir import RunDir

                with RunDir(run).locked():
                    q.put("acquired")
            except Exception as e:  # noqa: BLE001
                q.put(str(e))

        p = ctx.Process(target=child)
        p.start()
        p.join(30)
        msg = q.get(timeout=5)
        assert "in use by pid 424242 on elsewhere" in msg
    finally:
        os.close(fd)


def test_real_entry_point_prints_one_line_and_exits_2(tmp_path):
    exe = Path(sys.executable).parent / "sharpen"
    r = subprocess.run([str(exe), "run", "star", "sample.n=-3"], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr.strip() == "error: " + r.stderr.strip().removeprefix("error: ")
    assert len(r.stderr.strip().splitlines()) == 1 and "sample.n" in r.stderr and "Traceback" not in r.stderr


def test_grpo_temperature_must_match_sampling(capsys, monkeypatch, tmp_path):
    code, _, err = cli(capsys, monkeypatch, "run", "grpo", "sample.temperature=1.0", "--out", tmp_path / "run")
    one_line_error(code, err, "override 'sample.temperature=1.0'", "objective.temperature", "sample.temperature")


def usage_error(code: int, err: str, *needles: str) -> str:
    """click's usage error: the usage line, a `Try ... --help` hint, one `Error:` line; exit 2."""
    assert code == 2, err
    assert "Traceback" not in err, err
    lines = [l for l in err.strip().splitlines() if l.strip()]
    assert lines[0].startswith("Usage: sharpen"), err
    errors = [l for l in lines if l.startswith("Error:")]
    assert len(errors) == 1 and len(lines) <= 3, err
    for n in needles:
        assert n in errors[0], (n, errors[0])
    return errors[0]


@pytest.mark.parametrize("args,needles", [
    (["eval"], ["Missing argument", "checkpoint"]),
    (["compare", "star"], ["Missing option", "--budget"]),
    (["run", "star", "--bogus"], ["No such option", "--bogus"]),
    (["seed", "--seed", "x"], ["Invalid value", "--seed"]),
    (["eval", "ck", "--n", "0"], ["--n"]),
    (["frobnicate"], ["No such command", "frobnicate"]),
])
def test_usage_errors_print_usage_and_one_error_line(capsys, monkeypatch, args, needles):
    code, _, err = cli(capsys, monkeypatch, *args)
    usage_error(code, err, *needles)


def test_real_entry_point_usage_error_exits_2(tmp_path):
    exe = Path(sys.executable).parent / "sharpen"
    r = subprocess.run([str(exe), "run", "star", "--bogus"], capture_output=True, text=True, cwd=tmp_path)
    usage_error(r.returncode, r.stderr, "--bogus")


def test_eval_rejects_non_task_overrides(capsys, monkeypatch, tiny_checkpoint):
    code, _, err = cli(capsys, monkeypatch, "eval", tiny_checkpoint, "sample.n=4")
    one_line_error(code, err, "override 'sample.n=4'", "task.KEY=VALUE")
