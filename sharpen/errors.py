"""User-facing errors: one line that names the field or file and the fix; the CLI prints
it without a traceback and exits with code 2."""
from __future__ import annotations

import os


class UserError(Exception):
    """A mistake in the user's input (recipe, override, file, checkpoint path).

    `field` (e.g. "sample.n"), `detail` (the message after it) and `related` (other fields
    whose value makes `field` wrong) let a caller re-label where the bad value came from,
    e.g. an override instead of the recipe file."""

    def __init__(self, message: str, field: str | None = None, detail: str | None = None,
                 related: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.field = field
        self.detail = detail
        self.related = related


def is_out_of_memory(err: BaseException) -> bool:
    """CUDA's OutOfMemoryError, or the CPU allocator's failure (a plain RuntimeError)."""
    import torch

    text = str(err)
    return isinstance(err, torch.OutOfMemoryError) or "out of memory" in text or "can't allocate memory" in text


def field_error(source: str, field: str, detail: str, related: tuple[str, ...] = ()) -> UserError:
    """`<source>: <field>: <detail>`, the one shape of every recipe error; `field`, `detail`
    and `related` stay on the error so an override can take the blame (config._blame_override)."""
    return UserError(f"{source}: {field}: {detail}", field=field, detail=detail, related=related)


def read_user_text(path: str | os.PathLike[str], what: str, fix: str) -> str:
    """A user's text file, or one line naming it: missing, a folder, unreadable or not UTF-8.
    `what` says what the file is ("task file"), `fix` what to do instead."""
    from pathlib import Path

    p = Path(path)
    if not p.is_file():
        raise UserError(f"{p}: no such {what}{' (it is a folder)' if p.is_dir() else ''}; {fix}")
    try:
        return p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(f"{p}: {what} is not UTF-8 text (byte {exc.start}); save it as UTF-8") from None
    except OSError as exc:
        raise UserError(f"{p}: cannot read {what} ({exc.strerror}); {fix}") from None
