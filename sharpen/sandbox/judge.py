"""The trusted half of a function's unit test, run as the sandboxed program: it runs the
problem's `check(candidate)` itself, with `candidate` a stub that sends each call to the
model's function in another interpreter and takes back only a plain value.

Shipped as values.py + this file (`encode`, `decode`, `dumps` come from values.py); its
job arrives on stdin: {"prelude", "test", "entry_point", "candidate", "driver"}. Why the
candidate cannot forge a pass: it runs in a fresh exec (no copy of the test or of this
process's memory) with two pipes, stdin and stdout on /dev/null and the jail's stderr; the
verdict goes to this process's stdout, which it never holds; this process is not dumpable,
so it cannot be traced or read; and all it sends back is decoded into builtin values that
the test compares with the builtins' own operators. The verdict is one line: `pass`, or
`fail <exception>`.
"""
import builtins
import ctypes
import fcntl
import json
import os
import signal
import sys

PR_SET_DUMPABLE = 4
CALLS_FD, ANSWERS_FD = 3, 4  # in the candidate's process
MAX_ANSWER = 1 << 24  # bytes in one answer line


class NoAnswer(BaseException):
    """The function gave no plain value (its process died or hung up, or it returned an object
    that is not one). A BaseException, so a test's `except Exception` cannot swallow it."""


class CandidateError(Exception):
    """The function raised an exception that is not a builtin one."""


def spawn(job: dict) -> tuple:
    """Start the model's function in a fresh interpreter; (pid, calls writer, answers reader)."""
    for name in ("candidate", "driver"):
        with open(f"{name}.py", "w") as fh:
            fh.write(job[name])
    calls_r, calls_w = os.pipe()
    answers_r, answers_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            null = os.open(os.devnull, os.O_RDWR)
            moves = [(fcntl.fcntl(fd, fcntl.F_DUPFD, 10), target)  # above every target: no overlap
                     for fd, target in ((null, 0), (null, 1), (calls_r, CALLS_FD), (answers_w, ANSWERS_FD))]
            for fd, target in moves:
                os.dup2(fd, target)  # dup2 makes the target inheritable; nothing else is
            os.closerange(ANSWERS_FD + 1, 1 << 16)
            os.execv(sys.executable, [sys.executable, "-I", "-S", "-B", "driver.py", job["entry_point"]])
        finally:
            os._exit(127)
    os.close(calls_r)
    os.close(answers_w)
    return pid, os.fdopen(calls_w, "w"), os.fdopen(answers_r, "rb")


def raised(name: object) -> BaseException:
    """The exception the function reported: the builtin one of that name, if it is one."""
    kind = getattr(builtins, name, None) if type(name) is str else None
    if isinstance(kind, type) and issubclass(kind, Exception):
        try:
            return kind("raised by the function under test")
        except Exception:  # needs other arguments (UnicodeDecodeError)
            pass
    return CandidateError(str(name)[:100])


def stub(calls, answers, name: str):
    """`candidate(*args, **kwargs)`: one call sent, one plain value (or exception) back."""

    def candidate(*args, **kwargs):
        try:
            calls.write(dumps([list(args), kwargs]) + "\n")
            calls.flush()
        except OSError:
            raise NoAnswer("the function's process is gone") from None
        line = answers.readline(MAX_ANSWER)
        if not line.endswith(b"\n"):
            raise NoAnswer("no answer")
        try:
            kind, payload = json.loads(line)
            if kind == "ok":
                return decode(payload)
        except Exception:  # not JSON, not UTF-8, too deep, not a plain value
            raise NoAnswer("an answer that is not a plain value") from None
        if kind == "raised":
            raise raised(payload)
        raise NoAnswer(f"the function returned {str(payload)[:100]}, not a plain value")

    candidate.__name__ = candidate.__qualname__ = name
    return candidate


def main() -> None:
    job = json.loads(sys.stdin.read())
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)  # the job (it holds the test) is gone from fd 0
    report = os.fdopen(os.dup(1), "w")
    os.dup2(null, 1)  # the test's own prints stay out of the verdict
    if ctypes.CDLL(None).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
        raise SystemExit("the judge could not make itself undumpable")  # fail closed
    pid, calls, answers = spawn(job)
    namespace = {"__name__": "__judge__"}
    try:
        exec(compile(job["prelude"], "prompt.py", "exec"), namespace)
        exec(compile(job["test"], "test.py", "exec"), namespace)
        candidate = stub(calls, answers, job["entry_point"])
        namespace[job["entry_point"]] = candidate  # helpers that call it by name reach the model's too
        namespace["check"](candidate)
        verdict = "pass"
    except BaseException as err:
        verdict = f"fail {type(err).__name__}"
    os.kill(pid, signal.SIGKILL)  # without a pid namespace, nothing else would end it
    report.write(verdict + "\n")
    report.flush()
    os._exit(0)


main()
