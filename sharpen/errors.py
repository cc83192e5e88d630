"""User-facing errors: one line that names the field or file and the fix; the CLI prints
it without a traceback and exits with code 2."""


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
