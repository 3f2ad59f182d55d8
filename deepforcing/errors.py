"""User-facing errors: one clear message that says what was wrong and what to do."""


class UserError(Exception):
    """Bad input or a missing resource that the user can fix.

    The CLI prints the message on one line (plus the hint) and exits with code 2.

    Args:
        message: What was wrong.
        hint: What to do about it (optional).
    """

    exit_code = 2

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} — {self.hint}"
