"""Errors a user can act on: printed as one line, exit status 2."""


class LabError(Exception):
    """A problem the user can fix; the message says what to do."""
