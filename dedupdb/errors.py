"""The errors dedupdb raises: a message for the user and a hint that names the fix.

The library raises these; ``cli.py`` alone turns them into one line and an exit code.
"""

from __future__ import annotations


class DedupdbError(Exception):
    """Something the user can understand and act on."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class DatabaseError(DedupdbError):
    """The database cannot be opened, is too new, or is damaged."""


class DatabaseBusyError(DatabaseError):
    """Another dedupdb process is writing to the same database."""


class ParameterMismatchError(DedupdbError):
    """The database was indexed with other hash parameters."""


class RootNotFoundError(DedupdbError):
    """A folder to index does not exist or is not a folder."""


class EmptyRootError(DedupdbError):
    """A folder that held indexed images is now empty: most likely a drive not mounted."""
