"""The entry point: one `error:` line and exit 2 for a user mistake (bad recipe key or value,
missing file, corrupt checkpoint, missing optional package), click's usage line for a bad
command line, 130 for Ctrl-C, and one line naming a log for anything unexpected (exit 1)."""
from __future__ import annotations

import sys
from typing import NoReturn

from sharpen.cli.app import app, err
from sharpen.errors import UserError


def _click_errors() -> tuple[tuple[type[BaseException], ...], tuple[type[BaseException], ...]]:
    """(usage-error, abort) exception classes of the click that typer runs on: typer 0.29
    vendors click as `typer._click` (with its own Abort); older typers use `click` itself."""
    usage: list[type[BaseException]] = []
    abort: list[type[BaseException]] = []
    try:
        from typer._click.exceptions import ClickException as TyperClickException
        from typer.exceptions import Abort as TyperAbort

        usage.append(TyperClickException)
        abort.append(TyperAbort)
    except ImportError:
        pass
    try:
        import click

        usage.append(click.exceptions.ClickException)
        abort.append(click.exceptions.Abort)
    except ImportError:
        pass
    return tuple(usage), tuple(abort)


def _interrupted() -> NoReturn:
    err.print("interrupted: finished rounds are saved; `sharpen resume RUN_DIR` continues")
    sys.exit(130)


def _error_line(msg: str, code: int) -> NoReturn:
    err.print(f"error: {msg}", highlight=False, soft_wrap=True, markup=False)
    sys.exit(code)


def _crashed(e: Exception) -> NoReturn:
    """Not a user mistake: one line naming the log that holds the traceback (exit 1); a
    missing optional package is a user's to install (exit 2)."""
    import traceback

    from sharpen.optional import PACKAGES, missing_error
    from sharpen.rundir import write_error_log

    if isinstance(e, ModuleNotFoundError) and (e.name or "").split(".")[0] in PACKAGES:
        _error_line(str(missing_error(e.name.split(".")[0], "this command")), 2)  # type: ignore[union-attr]
    log = getattr(e, "sharpen_log", None) or write_error_log("".join(traceback.format_exception(e)))
    _error_line(f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''} (unexpected; the traceback is in {log})", 1)


def main() -> None:
    usage, abort = _click_errors()
    try:
        code = app(standalone_mode=False, prog_name="sharpen")
    except UserError as e:
        _error_line(str(e), 2)
    except KeyboardInterrupt:
        _interrupted()
    except usage as e:  # a missing argument, unknown option, bad option value: click's usage line + error
        if e.format_message().strip():  # type: ignore[attr-defined]  # empty: no-args help, already printed by rich
            e.show()  # type: ignore[attr-defined]
        sys.exit(e.exit_code)  # type: ignore[attr-defined]
    except abort:
        sys.exit(130)
    except Exception as e:  # noqa: BLE001 - last resort: never a traceback on the console
        _crashed(e)
    # without standalone mode typer returns the exit code of `--help` (0) and of Ctrl-C (130)
    if code == 130:
        _interrupted()
    if isinstance(code, int) and code:
        sys.exit(code)


if __name__ == "__main__":
    main()
