"""Run untrusted Python (model-generated code) in a jailed process and classify the outcome.

The outside half: spawn `jail.py` in a new session, hand it the job, read stdout/stderr
incrementally under a byte cap, and kill the whole process group on the wall-clock
deadline. Everything protective happens in `jail.py`; a protection the kernel refuses
raises `SandboxUnavailable` unless the caller passes `allow_weaker=True`.
"""
from __future__ import annotations

import itertools
import json
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal, Sequence

from sharpen.errors import UserError

JAIL = os.path.join(os.path.dirname(os.path.abspath(__file__)), "jail.py")
PYTHON = os.path.realpath(sys.executable)
# The untrusted program runs as one of these uids (when we are root): owned by nobody, so
# it can touch no file, and per-uid RLIMIT_NPROC holds (root ignores it).
UID_BASE, UID_SPAN = 1_000_000_000, 1 << 16
GRACE = 2.0  # seconds to drain pipes after a kill, so no sandboxed process outlives the call

Status = Literal["ok", "error", "timeout", "memory", "output_limit", "killed"]
_counter = itertools.count()
_REFUSE: tuple[str, ...] = ()  # protections the jail pretends the kernel refused (tests of the weaker path)


class SandboxUnavailable(UserError):
    """The kernel refused a protection the sandbox needs (and weaker runs were not allowed)."""


@dataclass(frozen=True)
class ExecResult:
    """How one sandboxed program ended. `returncode` is negative for a signal, None if we killed it."""

    status: Status
    returncode: int | None
    stdout: str
    stderr: str
    seconds: float
    weakened: tuple[str, ...] = ()  # protections the kernel refused under allow_weaker

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def run_python(
    code: str,
    *,
    stdin: str = "",
    timeout: float = 5.0,
    memory_mb: int = 512,
    cpu_seconds: float = 5,
    max_output_bytes: int = 1_000_000,
    processes: int = 32,
    open_files: int = 64,
    file_mb: int = 16,
    workdir_mb: int = 32,
    allow_weaker: bool = False,
) -> ExecResult:
    """Run `code` as a script under `python -I -S` in a fresh jail; never raises for what the code does.

    Limits: wall `timeout` (kills the process group), address space `memory_mb`, CPU
    `cpu_seconds`, combined stdout+stderr `max_output_bytes`, `processes` for the
    sandbox uid, `open_files`, `file_mb` per file, `workdir_mb` for its tmpfs /sandbox.
    """
    uid = UID_BASE + (os.getpid() * 7919 + next(_counter)) % UID_SPAN
    fallback = None
    if allow_weaker:  # the working dir if the kernel refuses a mount namespace
        fallback = tempfile.mkdtemp(prefix="sharpen-sandbox-")
        if os.geteuid() == 0:
            os.chown(fallback, uid, uid)
    job = {
        "code": code, "stdin": stdin, "uid": uid, "gid": uid, "python": PYTHON,
        "binds": sorted({sys.base_prefix, os.path.dirname(PYTHON)}), "allow_weaker": allow_weaker,
        "fallback_dir": fallback, "workdir_mb": workdir_mb, "refuse": list(_REFUSE),
        "limits": {"memory_mb": memory_mb, "cpu_seconds": cpu_seconds, "processes": processes,
                   "open_files": open_files, "file_mb": file_mb},
    }
    try:
        return _run_job(job, timeout, max_output_bytes)
    finally:
        if fallback:
            shutil.rmtree(fallback, ignore_errors=True)


def _run_job(job: dict, timeout: float, cap: int) -> ExecResult:
    start = time.monotonic()
    status_r, status_w = os.pipe()
    try:
        proc = subprocess.Popen(
            [PYTHON, "-I", "-S", "-B", JAIL, str(status_w)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, pass_fds=(status_w,), start_new_session=True, env={}, cwd="/",
        )
    finally:
        os.close(status_w)
    try:
        try:
            proc.stdin.write(json.dumps(job).encode())
            proc.stdin.close()
        except BrokenPipeError:
            pass  # the jail died before reading its job; its status says why
        out, err, verdict = _collect(proc, start + timeout, cap)
        proc.wait()
        with os.fdopen(status_r, "rb") as fh:
            status_lines = fh.read().decode(errors="replace").splitlines()
        status_r = -1
    finally:
        if proc.poll() is None:
            _kill(proc)
            proc.wait()
        if status_r >= 0:
            os.close(status_r)
    seconds = time.monotonic() - start
    weakened = tuple(line[5:] for line in status_lines if line.startswith("weak "))
    setup = [line[6:] for line in status_lines if line.startswith("setup ")]
    if setup and verdict is None:
        raise SandboxUnavailable(f"sandbox: {setup[0]}")
    returncode = _returncode(status_lines, proc.returncode)
    if verdict is None and returncode is None:
        raise RuntimeError(f"sandbox: the jail exited {proc.returncode} without a status; stderr: {err[-500:]!r}")
    stdout, stderr = out.decode(errors="replace"), err.decode(errors="replace")
    cpu = next((float(line[4:]) for line in status_lines if line.startswith("cpu ")), 0.0)
    status = verdict or _classify(returncode, stderr, cpu >= job["limits"]["cpu_seconds"])
    return ExecResult(status, None if verdict else returncode, stdout, stderr, seconds, weakened)


def _collect(proc: subprocess.Popen, deadline: float, cap: int) -> tuple[bytes, bytes, Status | None]:
    """Read stdout/stderr until both close; kill on the deadline or once they pass `cap` bytes."""
    bufs: dict[int, bytearray] = {proc.stdout.fileno(): bytearray(), proc.stderr.fileno(): bytearray()}
    total, verdict = 0, None
    with selectors.DefaultSelector() as sel:
        for fd in bufs:
            sel.register(fd, selectors.EVENT_READ)
        while sel.get_map():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                if verdict is None:  # first expiry: kill, then drain for a grace period
                    verdict = "timeout"
                    _kill(proc)
                    deadline = time.monotonic() + GRACE
                    continue
                break
            for key, _ in sel.select(remaining):
                chunk = os.read(key.fd, 1 << 16)
                if not chunk:
                    sel.unregister(key.fd)
                    continue
                if verdict is None:
                    bufs[key.fd] += chunk[: max(0, cap - total)]
                    total += len(chunk)
                    if total > cap:
                        verdict = "output_limit"
                        _kill(proc)
                        deadline = time.monotonic() + GRACE
    if verdict is None:  # outputs closed: the program may still run with them closed
        try:
            proc.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            verdict = "timeout"
            _kill(proc)
    out, err = bufs.values()
    return bytes(out), bytes(err), verdict


def _kill(proc: subprocess.Popen) -> None:
    """SIGKILL the jail's process group; pid 1 of the sandbox dies with it (or by PDEATHSIG), and
    the kernel then kills everything else in its pid namespace."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _returncode(status_lines: list[str], jail_code: int | None) -> int | None:
    for line in status_lines:
        kind, _, value = line.partition(" ")
        if kind == "exit":
            return int(value)
        if kind == "signal":
            return -int(value)
    return None


def _classify(returncode: int, stderr: str, cpu_spent: bool) -> Status:
    if returncode == 0:
        return "ok"
    if returncode == -signal.SIGXCPU or (returncode == -signal.SIGKILL and cpu_spent):
        return "timeout"
    if returncode < 0:
        return "killed"
    last = stderr.rstrip().rsplit("\n", 1)[-1]
    return "memory" if last.startswith("MemoryError") else "error"


def run_many(codes: Sequence[str], workers: int = 2, *, stdins: Sequence[str] | None = None, **limits) -> list[ExecResult]:
    """`run_python` over many programs with at most `workers` jails alive at once (order kept)."""
    stdins = list(stdins) if stdins is not None else [""] * len(codes)
    if len(stdins) != len(codes):
        raise ValueError(f"run_many: {len(codes)} codes but {len(stdins)} stdins")
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        return list(pool.map(lambda cs: run_python(cs[0], stdin=cs[1], **limits), zip(codes, stdins)))


def missing_features() -> list[str]:
    """The protections this kernel refuses (empty when the full sandbox works here)."""
    return list(run_python("pass", allow_weaker=True, timeout=10).weakened)
