"""The inside half of the sandbox: builds the jail, then execs the untrusted program.

Run as `python -I -S jail.py <status-fd>` with a JSON job on stdin (see `run.py`). It uses
the stdlib only (it runs isolated, before `sharpen` is importable) and reports on the
status fd, which the program never sees: `weak <feature>` for a protection the kernel
refused under `allow_weaker`, `setup <message>` when it refused and the job must not run,
and `cpu <seconds>` then `exit <code>` / `signal <n>` for how the program ended.

Steps: unshare mount/net/pid/ipc/uts namespaces (plus a user namespace when not root),
fork pid 1 of the new pid namespace (when it exits the kernel kills every process left in
it). pid 1 builds a minimal read-only root on a tmpfs (system dirs, the interpreter's
prefix, a few /etc files, /dev nodes, a writable tmpfs /sandbox), pivots into it (then
chroots one level down) and forks the program, which sets
rlimits, drops to an unprivileged uid, sets no_new_privs and execs.
"""
from __future__ import annotations

import ctypes
import json
import math
import os
import platform
import resource
import signal
import sys

CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC = 0x00020000, 0x04000000, 0x08000000
CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x10000000, 0x20000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_NOATIME, MS_NODIRATIME, MS_BIND = 32, 1024, 2048, 4096
MS_REC, MS_PRIVATE, MS_RELATIME = 16384, 1 << 18, 1 << 21
MNT_DETACH = 2
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_SET_NO_NEW_PRIVS = 1, 4, 38
SETUP_FAILED = 121  # exit code of a jail half that could not finish its setup
SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "riscv64": 41, "ppc64le": 203, "s390x": 217}
# statvfs flags a bind remount must keep (the kernel locks them on unprivileged mounts).
KEEP_FLAGS = {os.ST_NOEXEC: MS_NOEXEC, os.ST_NOATIME: MS_NOATIME, os.ST_NODIRATIME: MS_NODIRATIME,
              os.ST_RELATIME: MS_RELATIME, os.ST_NOSUID: MS_NOSUID, os.ST_NODEV: MS_NODEV}

SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
ETC_FILES = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "alternatives")
DEV_NODES = ("null", "zero", "full", "random", "urandom")
WORKDIR = "/sandbox"
JAILDIR = "/jail"  # the root the program sees, one level below the tmpfs top
ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": WORKDIR, "LANG": "C.UTF-8"}

libc = ctypes.CDLL(None, use_errno=True)


def check(ret: int, what: str) -> None:
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def mount(src: str | None, dst: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    enc = lambda s: s.encode() if s is not None else None  # noqa: E731
    check(libc.mount(enc(src), enc(dst), enc(fstype), ctypes.c_ulong(flags), enc(data)), f"mount {dst}")


def bind(src: str, dst: str, readonly: bool = True) -> None:
    """Bind `src` at `dst`; read-only, nosuid and nodev unless it is a device node."""
    mount(src, dst, None, MS_BIND | MS_REC)
    if readonly:
        keep = os.statvfs(src).f_flag
        flags = MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV
        flags |= sum(ms for st, ms in KEEP_FLAGS.items() if keep & st)
        mount(None, dst, None, flags)


class Jail:
    """One job: its namespaces, its root and its program."""

    def __init__(self, job: dict, status_fd: int) -> None:
        self.job = job
        self.status = status_fd
        self.weak: list[str] = []
        self.root_user = os.geteuid() == 0

    def say(self, line: str) -> None:
        os.write(self.status, (line.replace("\n", " ") + "\n").encode())

    def need(self, feature: str, step, *args) -> bool:
        """Run one protective step; a refusal stops the job unless the caller allowed weaker."""
        try:
            if feature in self.job.get("refuse", ()):  # tests exercise the weaker path on a full kernel
                raise OSError(1, "refused on request (test)")
            step(*args)
            return True
        except OSError as err:
            if not self.job["allow_weaker"]:
                raise SetupError(f"the kernel refused {feature} ({err.strerror or err}); run as root "
                                 "or enable unprivileged user namespaces, or pass allow_weaker=True") from None
            self.weak.append(feature)
            self.say(f"weak {feature}")
            return False

    # -- outside: namespaces, then fork pid 1 ------------------------------------------
    def unshare(self) -> None:
        if not self.root_user:
            uid, gid = os.geteuid(), os.getegid()
            if self.need("a user namespace", self._unshare, CLONE_NEWUSER):
                for path, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"), ("gid_map", f"{gid} {gid} 1")):
                    with open(f"/proc/self/{path}", "w") as fh:
                        fh.write(text)
        for flag, feature in ((CLONE_NEWNS, "a mount namespace"), (CLONE_NEWNET, "a network namespace"),
                              (CLONE_NEWPID, "a pid namespace"), (CLONE_NEWIPC, "an ipc namespace"),
                              (CLONE_NEWUTS, "a uts namespace")):
            self.need(feature, self._unshare, flag)

    @staticmethod
    def _unshare(flag: int) -> None:
        check(libc.unshare(ctypes.c_int(flag)), "unshare")

    def run(self) -> None:
        self.unshare()
        stdin = os.memfd_create("stdin", 0)
        os.write(stdin, self.job["stdin"].encode())
        os.lseek(stdin, 0, os.SEEK_SET)
        pid = os.fork()
        if pid == 0:
            self.guarded(self.init, stdin)
        _, status = os.waitpid(pid, 0)
        if os.waitstatus_to_exitcode(status) not in (0, SETUP_FAILED):
            self.say(f"setup jail init died with status {os.waitstatus_to_exitcode(status)}")

    def guarded(self, step, *args) -> None:
        """Run a forked half of the jail; any failure is reported as a setup error, never raised."""
        try:
            step(*args)
        except SetupError as err:
            self.say(f"setup {err}")
        except BaseException as err:  # anything else is a jail bug: report it
            self.say(f"setup jail failed: {type(err).__name__}: {err}")
        os._exit(SETUP_FAILED)

    # -- inside: pid 1 builds the root and reaps; the program runs as its child ------------
    def init(self, stdin: int) -> None:
        """pid 1 of the sandbox. The program is its child, not pid 1 itself, because the kernel
        drops default-action signals (SIGXCPU from RLIMIT_CPU, a program's own SIGTERM) sent
        to a namespace's init. When it exits, the kernel kills whatever the program left."""
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if "a mount namespace" not in self.weak:
            self.build_root()
        else:  # weaker: a private directory on the host (removed by the parent)
            os.chdir(self.job["fallback_dir"])
            with open("main.py", "w") as fh:
                fh.write(self.job["code"])
        if "a uts namespace" not in self.weak:
            libc.sethostname(b"sandbox", 7)
        program = os.fork()
        if program == 0:
            self.guarded(self.program, stdin)
        libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)  # the program (same uid, non-root mode) cannot ptrace us
        for fd in (0, 1, 2, stdin):
            os.close(fd)
        while True:  # reap everything (fork bombs leave zombies) until the program itself ends
            pid, status, usage = os.wait4(-1, 0)
            if pid == program:
                break
        self.say(f"cpu {usage.ru_utime + usage.ru_stime:.3f}")
        if os.WIFSIGNALED(status):
            self.say(f"signal {os.WTERMSIG(status)}")
        else:
            self.say(f"exit {os.WEXITSTATUS(status)}")
        os._exit(0)

    def program(self, stdin: int) -> None:
        """Limits, an unprivileged uid, no_new_privs, then exec the untrusted code."""
        self.set_limits()
        if self.root_user:
            os.setgroups([])
            os.setresgid(self.job["gid"], self.job["gid"], self.job["gid"])
            os.setresuid(self.job["uid"], self.job["uid"], self.job["uid"])
        check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl no_new_privs")
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # the uid change cleared it
        python = self.job["python"]
        if not os.access(python, os.X_OK):  # only without a mount namespace: the uid cannot reach it
            raise SetupError(f"the sandbox uid cannot run {python} without a mount namespace; "
                             "install Python where every user can read it, or enable mount namespaces")
        os.dup2(stdin, 0)
        os.closerange(3, self.status)
        os.closerange(self.status + 1, 1 << 16)
        os.execve(python, [python, "-I", "-S", "-B", "main.py"], ENV)

    def build_root(self) -> None:
        mount(None, "/", None, MS_REC | MS_PRIVATE)
        binds = [os.path.realpath(p) for p in self.job["binds"]]
        root = next(d for d in ("/tmp", "/mnt", "/media", "/srv", "/var/tmp")
                    if os.path.isdir(d) and not any(b == d or b.startswith(d + "/") for b in binds))
        mount("tmpfs", root, "tmpfs", MS_NOSUID, "size=1m,mode=755")
        top, root = root, root + JAILDIR
        os.mkdir(root)
        bound: list[str] = []
        for d in SYSTEM_DIRS:
            if os.path.islink(d):
                os.symlink(os.readlink(d), root + d)
            elif os.path.isdir(d):
                os.mkdir(root + d)
                bind(d, root + d)
                bound.append(d)
        for src in binds:  # the interpreter's prefix, unless a system dir already holds it
            if os.path.isdir(src) and not any(src == b or src.startswith(b + "/") for b in bound):
                os.makedirs(root + src, exist_ok=True)
                bind(src, root + src)
                bound.append(src)
        os.mkdir(root + "/etc")
        for name in ETC_FILES:
            self.copy_entry("/etc/" + name, root)
        os.mkdir(root + "/dev")
        for name in DEV_NODES:
            if os.path.exists("/dev/" + name):
                open(root + "/dev/" + name, "w").close()
                bind("/dev/" + name, root + "/dev/" + name, readonly=False)
        work = root + WORKDIR
        os.mkdir(work)
        owner = f",uid={self.job['uid']},gid={self.job['gid']}" if self.root_user else ""
        mount("tmpfs", work, "tmpfs", MS_NOSUID | MS_NODEV, f"size={self.job['workdir_mb']}m,mode=700{owner}")
        with open(work + "/main.py", "w") as fh:
            fh.write(self.job["code"])
        mount(None, top, None, MS_REMOUNT | MS_RDONLY | MS_NOSUID)
        os.chdir(top)
        number = SYS_PIVOT_ROOT.get(platform.machine())
        if number is not None:  # the host's tree leaves the namespace entirely
            check(libc.syscall(ctypes.c_long(number), b".", b"."), "pivot_root")
            check(libc.umount2(b".", MNT_DETACH), "umount old root")
        # chroot one level down: the kernel refuses a new user namespace to a chrooted
        # process, so the program cannot regain capabilities to remount anything.
        os.chroot(JAILDIR)
        os.chdir(WORKDIR)

    @staticmethod
    def copy_entry(src: str, root: str) -> None:
        """Mirror one /etc entry: symlinks as symlinks, files and dirs as read-only binds."""
        if os.path.islink(src):
            os.symlink(os.readlink(src), root + src)
        elif os.path.isdir(src):
            os.mkdir(root + src)
            bind(src, root + src)
        elif os.path.isfile(src):
            open(root + src, "w").close()
            bind(src, root + src)

    def set_limits(self) -> None:
        lim = self.job["limits"]
        mem = lim["memory_mb"] << 20
        cpu = max(1, math.ceil(lim["cpu_seconds"]))
        for res, value in ((resource.RLIMIT_AS, (mem, mem)), (resource.RLIMIT_DATA, (mem, mem)),
                           (resource.RLIMIT_CPU, (cpu, cpu + 1)), (resource.RLIMIT_CORE, (0, 0)),
                           (resource.RLIMIT_FSIZE, (lim["file_mb"] << 20,) * 2),
                           (resource.RLIMIT_NOFILE, (lim["open_files"],) * 2),
                           (resource.RLIMIT_NPROC, (lim["processes"],) * 2),
                           (resource.RLIMIT_MSGQUEUE, (0, 0))):
            resource.setrlimit(res, value)


class SetupError(Exception):
    """The jail could not be built as asked; the program must not run."""


def main() -> None:
    status = int(sys.argv[1])
    os.set_inheritable(status, False)
    job = json.loads(sys.stdin.buffer.read())
    jail = Jail(job, status)
    try:
        jail.run()
    except SetupError as err:
        jail.say(f"setup {err}")
        sys.exit(SETUP_FAILED)


if __name__ == "__main__":
    main()
