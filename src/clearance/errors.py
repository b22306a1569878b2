"""The root of every Clearance exception hierarchy.

Each package defines its own hierarchy under :class:`ClearanceError`; the
command line maps :class:`BadInput` to exit code 2 and :class:`Refused` to
exit code 1, so a library error reaches the user as one line, never a
traceback.
"""


class ClearanceError(Exception):
    """Base of all errors raised on purpose by Clearance."""


class BadInput(ClearanceError):  # noqa: N818 - the name says what it is for the user
    """The input (a file, an argument, a document) is malformed or unusable: exit code 2."""


class Refused(ClearanceError):  # noqa: N818
    """A verification or policy check refused: exit code 1."""
