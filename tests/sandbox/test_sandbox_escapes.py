"""Each test is one attack a model's code might make; the sandbox must refuse or contain it."""
from __future__ import annotations

import os
import resource
import socket
import textwrap
import uuid
from pathlib import Path

import pytest

from sandbox_helpers import full_sandbox, no_strays  # noqa: F401  (fixture)
from sharpen.sandbox import run_python

pytestmark = full_sandbox


def test_infinite_loop_times_out():
    r = run_python("while True: pass", timeout=1.0)
    assert r.status == "timeout"
    assert r.seconds < 3.0


def test_cpu_limit_stops_a_busy_loop_before_the_wall_clock():
    r = run_python("while True: pass", timeout=20.0, cpu_seconds=1)
    assert r.status == "timeout"
    assert r.seconds < 5.0


def test_fork_bomb_is_contained_and_leaves_nothing(no_strays):
    """The bomb counts its forks until the first refusal, then keeps trying until the wall clock."""
    bomb = textwrap.dedent("""
        import os, time
        n = 0
        while True:
            try:
                if os.fork() == 0:
                    time.sleep(3600)
                n += 1
            except OSError:
                break
        print(n, flush=True)
        while True:
            try:
                os.fork()
            except OSError:
                pass
    """)
    r = run_python(bomb, timeout=1.5, processes=16)
    assert r.status == "timeout", r
    assert 0 < int(r.stdout) < 16  # the 16-process limit refused the rest
    assert r.seconds < 5.0
    # the host can still fork
    assert os.waitpid(pid := os.fork() or os._exit(0), 0)[0] == pid


def test_plain_fork_bomb_hits_the_process_limit(no_strays):
    r = run_python("import os\nwhile True: os.fork()", timeout=5.0, processes=16)
    assert r.status == "error", r
    assert r.stderr.rstrip().splitlines()[-1].startswith("BlockingIOError"), r.stderr[-300:]


def test_daemonized_grandchild_does_not_survive(no_strays):
    code = textwrap.dedent("""
        import os, time
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                time.sleep(3600)
            os._exit(0)
        print("parent done")
    """)
    r = run_python(code, timeout=5.0)
    assert (r.status, r.stdout) == ("ok", "parent done\n"), r
    assert r.seconds < 3.0


@pytest.mark.parametrize("code", [
    "x = bytearray(10 * 2**30)",
    "chunks = []\nwhile True: chunks.append(bytearray(2**24))",
    "x = 'a' * (10 * 2**30)",
])
def test_ten_gigabytes_fail_inside_the_limit(code):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    r = run_python(code, memory_mb=256, timeout=10.0)
    assert r.status in ("memory", "killed"), r
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 100_000  # KiB: host untouched


def test_connect_to_a_live_listener_on_localhost_fails():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.setblocking(False)
        port = listener.getsockname()[1]
        code = f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=2)\nprint('connected')"
        r = run_python(code, timeout=5.0)
        assert r.status == "error", r
        assert r.stderr.rstrip().splitlines()[-1].startswith("OSError: [Errno 101] Network is unreachable"), r.stderr
        assert "connected" not in r.stdout
        with pytest.raises(BlockingIOError):
            listener.accept()  # nothing ever reached it


def test_writes_outside_the_working_dir_fail(tmp_path):
    name = f"sharpen-escape-{uuid.uuid4().hex}"
    targets = [f"/tmp/{name}", f"../{name}", f"/{name}", str(tmp_path / name), f"{Path.home()}/{name}"]
    code = "import sys\nfor t in sys.argv[1:] or %r:\n    try:\n        open(t, 'w').write('x'); print('wrote', t)\n    except OSError:\n        pass\nopen('inside.txt', 'w').write('ok'); print(open('inside.txt').read())" % (targets,)
    r = run_python(code)
    assert (r.status, r.stdout) == ("ok", "ok\n"), r
    for t in targets:
        assert not Path(t).exists() and not (Path("/") / name).exists()


def test_reading_a_secret_in_the_home_dir_fails():
    decoy = Path.home() / f".sharpen-decoy-{uuid.uuid4().hex}"
    secret = f"secret-{uuid.uuid4().hex}"
    decoy.mkdir()
    try:
        (decoy / "token.txt").write_text(secret)
        os.chmod(decoy, 0o755)
        os.chmod(decoy / "token.txt", 0o644)  # readable by anyone on the host: only the jail hides it
        code = textwrap.dedent(f"""
            import os
            for top in ('/root', '/home', '/tmp', '/work', {str(decoy)!r}):
                for root, dirs, files in os.walk(top):
                    dirs[:] = [d for d in dirs if d != '.pyenv']
                    for f in files:
                        print(open(os.path.join(root, f), errors='replace').read())
            print(open({str(decoy / 'token.txt')!r}).read())
        """)
        r = run_python(code, timeout=10.0)
        assert r.status == "error" and "FileNotFoundError" in r.stderr
        assert secret not in r.stdout + r.stderr
    finally:
        (decoy / "token.txt").unlink()
        decoy.rmdir()


def test_rm_rf_cannot_touch_a_decoy_tree(tmp_path):
    decoys = [tmp_path / "decoy", Path.home() / f".sharpen-decoy-{uuid.uuid4().hex}"]
    for d in decoys:
        (d / "sub").mkdir(parents=True)
        (d / "sub" / "keep.txt").write_text("keep")
        os.chmod(d, 0o777)
        os.chmod(d / "sub", 0o777)
        os.chmod(d / "sub" / "keep.txt", 0o666)  # world-writable: only the jail protects it
    try:
        code = textwrap.dedent(f"""
            import os, shutil
            os.system('rm -rf .. 2>/dev/null')
            os.system('rm -rf ../sandbox ../root ../tmp ../work ../home 2>/dev/null')
            os.system('rm -rf {decoys[0]} {decoys[1]} 2>/dev/null')
            for d in {[str(d) for d in decoys]!r}:
                shutil.rmtree(d, ignore_errors=True)
            print('tried')
        """)
        r = run_python(code, timeout=10.0)
        assert (r.status, r.stdout) == ("ok", "tried\n"), r
        for d in decoys:
            assert (d / "sub" / "keep.txt").read_text() == "keep"
    finally:
        for d in decoys[1:]:
            (d / "sub" / "keep.txt").unlink()
            (d / "sub").rmdir()
            d.rmdir()


@pytest.mark.parametrize("stream", ["stdout", "stderr"])
def test_output_flood_ends_with_output_limit(stream):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    r = run_python(f"import sys\nwhile True: sys.{stream}.write('x' * 65536)", timeout=30.0,
                   max_output_bytes=1_000_000)
    assert r.status == "output_limit"
    assert r.seconds < 5.0
    assert len(r.stdout) + len(r.stderr) <= 1_000_000
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 50_000  # KiB


def test_environment_secrets_are_invisible(monkeypatch):
    secret = f"hunter2-{uuid.uuid4().hex}"
    monkeypatch.setenv("SHARPEN_TEST_SECRET", secret)
    code = "import os\nprint(dict(os.environ))\nfor p in ('/proc/self/environ', '/proc/1/environ'):\n    try: print(open(p).read())\n    except OSError: pass"
    r = run_python(code)
    assert r.status == "ok"
    assert secret not in r.stdout and "SHARPEN_TEST_SECRET" not in r.stdout


def test_runs_unprivileged_without_a_way_back():
    code = textwrap.dedent("""
        import ctypes, os
        print(os.getuid() != 0, os.geteuid() != 0)
        libc = ctypes.CDLL(None, use_errno=True)
        print(libc.unshare(0x10000000))  # a user namespace would give capabilities back
        try:
            os.setuid(0)
            print('root again')
        except PermissionError:
            print('no setuid')
    """)
    r = run_python(code)
    assert r.status == "ok" and r.stdout.split() == ["True", "True", "-1", "no", "setuid"], r
