"""The one kind of failure the CLI reports: a `code` and a `message`, as the API's errors have."""

from __future__ import annotations


class TransferError(Exception):
    """Ends the command with `error: <code>: <message>` and exit status 1."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class ApiError(TransferError):
    """An error answer of the API, with the HTTP status it came with."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(code, message)
        self.status = status


class Cancelled(Exception):
    """Raised inside a worker thread when the command is being interrupted.

    Not a TransferError: nothing went wrong, the transfer stops so that it can be resumed.
    """
