"""User-facing errors: one line that names the field or file and the fix; the CLI prints
it without a traceback and exits with code 2."""


class UserError(Exception):
    """A mistake in the user's input (recipe, override, file, checkpoint path)."""
