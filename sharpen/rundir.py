"""The run directory, the record of truth: atomic writes, a per-round completion marker,
and a lock so two processes never write one run.

Layout: config.yaml, rounds/<r>/{samples.jsonl, checkpoint/, metrics.json}, run.lock,
report.html, error.log (the traceback of an unexpected failure).
A round is complete only when its metrics.json exists (written last, atomically), so a
run killed at any moment resumes at the first round without one.
"""
from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
import socket
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import yaml

from sharpen.errors import UserError

TMP_PREFIX = ".tmp-"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _disk_error(path: Path, exc: OSError) -> UserError:
    if exc.errno == errno.ENOSPC:
        return UserError(f"{path}: no space left on device; free space or point run.out at another disk")
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return UserError(f"{path}: not writable ({exc.strerror}); choose a writable run.out")
    return UserError(f"{path}: cannot write ({exc.strerror})")


def atomic_write(path: Path, data: bytes | str) -> None:
    """Write via temp file + fsync + rename: readers see the old file or the new one."""
    path = Path(path)
    raw = data.encode() if isinstance(data, str) else data
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX, dir=path.parent)
        os.fchmod(fd, 0o644)  # mkstemp makes 0600 files; a run's record is meant to be shared
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except OSError as exc:
        if tmp and os.path.exists(tmp):
            os.unlink(tmp)
        raise _disk_error(path, exc) from None


def atomic_json(path: Path, obj: Any) -> None:
    atomic_write(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def atomic_dir(path: Path, fill: Callable[[Path], None]) -> None:
    """Fill a temp directory, fsync it, then rename it into place (checkpoints)."""
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=TMP_PREFIX, dir=path.parent))
        fill(tmp)
        for f in sorted(tmp.rglob("*"), reverse=True):
            if f.is_file():
                with open(f, "rb") as fh:
                    os.fsync(fh.fileno())
            else:
                _fsync_dir(f)
        _fsync_dir(tmp)
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except Exception as exc:
        if tmp and tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, OSError):
            raise _disk_error(path, exc) from None
        if "os error 28" in str(exc) or "No space left" in str(exc):  # safetensors wraps ENOSPC
            raise _disk_error(path, OSError(errno.ENOSPC, "No space left on device")) from None
        raise


def write_error_log(text: str, folder: Path | None = None) -> Path:
    """Write a traceback to `folder`/error.log, or to a temp file when there is no such
    folder or it cannot be written (a full disk); returns where it went."""
    if folder is not None and Path(folder).is_dir():
        try:
            (Path(folder) / "error.log").write_text(text)
            return Path(folder) / "error.log"
        except OSError:
            pass
    fd, name = tempfile.mkstemp(prefix="sharpen-error-", suffix=".log")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return Path(name)


class RunDir:
    """One run's directory. Use `with RunDir(path).locked(): ...` around any writes."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    @property
    def config_path(self) -> Path:
        return self.path / "config.yaml"

    def round_dir(self, r: int) -> Path:
        return self.path / "rounds" / str(r)

    def metrics_path(self, r: int) -> Path:
        return self.round_dir(r) / "metrics.json"

    def checkpoint(self, r: int) -> Path:
        return self.round_dir(r) / "checkpoint"

    def is_complete(self, r: int) -> bool:
        return self.metrics_path(r).exists()

    def first_incomplete_round(self, rounds: int) -> int:
        """The first round without metrics.json (rounds + 1 when all are done)."""
        r = 0
        while r <= rounds and self.is_complete(r):
            r += 1
        return r

    def metrics(self) -> list[dict]:
        """metrics.json of every complete round, in order."""
        out = []
        r = 0
        while self.is_complete(r):
            out.append(json.loads(self.metrics_path(r).read_text()))
            r += 1
        return out

    def check_target(self) -> None:
        """Refuse a folder that is not ours before anything is written: a run directory is
        new, empty, or a sharpen run (it resumes). A user's folder is never touched."""
        if not self.path.exists():
            return
        if not self.path.is_dir():
            raise UserError(f"run directory {self.path}: is a file; pass a new or empty folder as --out (run.out)")
        if not self.holds_run() and any(self.path.iterdir()):
            raise UserError(f"run directory {self.path}: not empty and not a sharpen run (no config.yaml); "
                            "pass a new or empty folder as --out (run.out)")

    def holds_run(self) -> bool:
        """A sharpen run: its config.yaml is a recipe, or a run killed before writing one
        left only its lock and temp files."""
        if not self.path.is_dir():
            return False
        if self.config_path.is_file():
            try:
                data = yaml.safe_load(self.config_path.read_text())
            except (yaml.YAMLError, OSError, UnicodeDecodeError):
                return False
            return isinstance(data, dict) and {"name", "task", "build", "objective"} <= set(data)
        entries = list(self.path.iterdir())
        return bool(entries) and all(e.name == "run.lock" or e.name.startswith(TMP_PREFIX) for e in entries)

    def remove_new(self, existed: bool) -> None:
        """Undo a run this process started in a new or empty folder (everything in it is
        ours): the folder itself goes too when this process made it."""
        if not self.path.is_dir():
            return
        for p in self.path.iterdir():
            shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()
        if not existed:
            self.path.rmdir()

    def write_error_log(self, text: str) -> Path:
        """The traceback of an unexpected failure, in <run>/error.log."""
        return write_error_log(text, self.path)

    def clean_partial(self) -> list[Path]:
        """Delete what a killed writer left: temp files/dirs and incomplete rounds' files."""
        removed: list[Path] = []
        if not self.path.exists():
            return removed
        for p in sorted(self.path.rglob(TMP_PREFIX + "*")):
            if p.exists():
                shutil.rmtree(p) if p.is_dir() else p.unlink()
                removed.append(p)
        rounds = self.path / "rounds"
        if rounds.exists():
            for d in rounds.iterdir():
                if d.is_dir() and not (d / "metrics.json").exists():
                    shutil.rmtree(d)
                    removed.append(d)
        return removed

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold run.lock (flock: the kernel frees it when the owner dies, so a stale
        lock from a killed run is taken over, and a live owner is named in the error)."""
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path / "run.lock", os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise _disk_error(self.path, exc) from None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                owner = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
                raise UserError(
                    f"run directory {self.path} is in use by {owner}; wait for it to finish or use another run.out"
                ) from None
            self.stale_owner = os.pread(fd, 200, 0).decode(errors="replace").strip()
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}".encode(), 0)
            try:
                yield
            finally:
                os.ftruncate(fd, 0)
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)
