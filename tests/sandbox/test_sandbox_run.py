"""The normal path: ordinary programs give the right output and status, in parallel too,
and a protection the kernel refuses stops the run unless weaker runs are allowed."""
from __future__ import annotations

import os

import pytest

from sandbox_helpers import full_sandbox
from sharpen.errors import UserError
from sharpen.sandbox import SandboxUnavailable, missing_features, run_many, run_python
from sharpen.sandbox import jail, run


@full_sandbox
def test_ordinary_code_returns_its_stdout():
    r = run_python("import math\nprint(sum(i * i for i in range(10)), math.gcd(12, 18))")
    assert (r.status, r.returncode, r.stdout, r.stderr) == ("ok", 0, "285 6\n", "")
    assert r.ok and r.weakened == ()


@full_sandbox
def test_stdin_reaches_the_program():
    r = run_python("import sys\nprint(sum(int(x) for x in sys.stdin.read().split()))", stdin="1 2 3\n4\n")
    assert r.stdout == "10\n"


@full_sandbox
@pytest.mark.parametrize("code, status, returncode", [
    ("raise ValueError('bad')", "error", 1),
    ("import sys\nsys.exit(3)", "error", 3),
    ("def f(:\n  pass", "error", 1),
    ("import os, signal\nos.kill(os.getpid(), signal.SIGTERM)", "killed", -15),
])
def test_failures_are_classified(code, status, returncode):
    r = run_python(code)
    assert (r.status, r.returncode) == (status, returncode)


@full_sandbox
def test_the_working_dir_is_private_and_writable():
    code = "import os\nopen('a.txt', 'w').write('hi')\nprint(os.getcwd(), open('a.txt').read(), sorted(os.listdir('.')))"
    first = run_python(code)
    assert first.stdout == "/sandbox hi ['a.txt', 'main.py']\n"
    assert run_python("import os\nprint(sorted(os.listdir('.')))").stdout == "['main.py']\n"  # fresh per run


@full_sandbox
def test_run_many_keeps_order_and_results():
    codes = [f"import time\ntime.sleep({0.05 * (i % 3)})\nprint({i} * {i})" for i in range(12)]
    results = run_many(codes, workers=2)
    assert [r.stdout for r in results] == [f"{i * i}\n" for i in range(12)]
    assert all(r.status == "ok" for r in results)


@full_sandbox
def test_run_many_isolates_a_bad_program_from_its_neighbours():
    results = run_many(["print(1)", "while True: pass", "print(3)"], workers=2, timeout=1.0,
                       stdins=["", "", ""])
    assert [r.status for r in results] == ["ok", "timeout", "ok"]
    assert results[2].stdout == "3\n"


def test_this_kernel_gives_the_full_sandbox():
    """Fails (instead of silently skipping the escape tests) when run as root here."""
    if os.geteuid() != 0:
        pytest.skip("only root is guaranteed every namespace")
    assert missing_features() == []


def test_a_refused_protection_stops_the_run(tmp_path, monkeypatch):
    fake = tmp_path / "jail.py"
    fake.write_text("import os, sys\nos.write(int(sys.argv[1]), b'setup the kernel refused a pid namespace (EPERM)\\n')\n")
    monkeypatch.setattr(run, "JAIL", str(fake))
    with pytest.raises(SandboxUnavailable, match="refused a pid namespace") as info:
        run_python("print(1)")
    assert isinstance(info.value, UserError)


def _jail(allow_weaker: bool) -> tuple[jail.Jail, int]:
    r, w = os.pipe()
    return jail.Jail({"allow_weaker": allow_weaker}, w), r


def test_jail_refuses_without_allow_weaker():
    j, _ = _jail(False)
    with pytest.raises(jail.SetupError, match="refused a network namespace .*allow_weaker=True"):
        j.need("a network namespace", lambda: (_ for _ in ()).throw(PermissionError(1, "Operation not permitted")))


def test_jail_records_weakened_features_when_allowed():
    j, r = _jail(True)
    assert j.need("a network namespace", lambda: (_ for _ in ()).throw(PermissionError(1, "nope"))) is False
    assert j.need("a uts namespace", lambda: None) is True
    assert j.weak == ["a network namespace"]
    assert os.read(r, 100) == b"weak a network namespace\n"



@full_sandbox
def test_weaker_runs_only_when_allowed_and_report_what_is_missing(monkeypatch):
    monkeypatch.setattr(run, "_REFUSE", ("a network namespace", "a pid namespace"))
    with pytest.raises(SandboxUnavailable, match="refused a network namespace.*allow_weaker=True"):
        run_python("print(1)")
    r = run_python("import os\nprint(os.getcwd())", allow_weaker=True)
    assert (r.status, r.stdout) == ("ok", "/sandbox\n")
    assert r.weakened == ("a network namespace", "a pid namespace")
    assert missing_features() == ["a network namespace", "a pid namespace"]


def _world_runnable(path: str) -> bool:
    parts = [path] + [os.path.dirname(path)]
    while parts[-1] != "/":
        parts.append(os.path.dirname(parts[-1]))
    return all(os.stat(p).st_mode & 0o001 for p in parts)


@full_sandbox
def test_without_a_mount_namespace_the_program_runs_in_a_private_host_dir(monkeypatch):
    monkeypatch.setattr(run, "_REFUSE", ("a mount namespace",))
    if os.geteuid() == 0 and not _world_runnable(run.PYTHON):
        with pytest.raises(SandboxUnavailable, match="cannot run .* without a mount namespace"):
            run_python("print(1)", allow_weaker=True)
        return
    r = run_python("import os\nprint(os.getcwd().startswith('/sandbox'), sorted(os.listdir('.')))", allow_weaker=True)
    assert (r.status, r.stdout, r.weakened) == ("ok", "False ['main.py']\n", ("a mount namespace",))
