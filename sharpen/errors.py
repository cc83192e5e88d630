"""User-facing errors: one line that names the field or file and the fix; the CLI prints
it without a traceback and exits with code 2."""
from __future__ import annotations

import os
from pathlib import Path


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


def one_line(text: object, limit: int = 200) -> str:
    """Any message (an exception's, a server's) squeezed to one line of at most `limit` characters."""
    flat = " ".join(str(text).split()) or (type(text).__name__ if isinstance(text, BaseException) else "")
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def user_file(path: str | os.PathLike[str], what: str, fix: str, field: str | None = None) -> Path:
    """`path` if it is a file, else one line: `<field>: no such <what> '<path>' (relative to
    <cwd>); <fix>`."""
    p = Path(path).expanduser()
    if not p.is_file():
        where = " (it is a folder)" if p.is_dir() else f" (relative to {Path.cwd()})" if not p.is_absolute() else ""
        raise UserError(f"{field + ': ' if field else ''}no such {what} {str(p)!r}{where}; {fix}", field=field)
    return p


def decode_text(data: bytes, path: str | os.PathLike[str], what: str) -> str:
    """UTF-8 text, or one line naming the file and the byte that is not."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: {what} is not UTF-8 text (byte {exc.start}); save it as UTF-8") from None


def read_user_text(path: str | os.PathLike[str], what: str, fix: str, field: str | None = None) -> str:
    """A user's text file, or one line naming it: missing, a folder, unreadable or not UTF-8.
    `what` says what the file is ("task file"), `fix` what to do instead."""
    p = user_file(path, what, fix, field)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise UserError(f"{p}: cannot read {what} ({exc.strerror}); {fix}") from None
    return decode_text(data, p, what)
