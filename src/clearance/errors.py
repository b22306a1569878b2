"""The root of every Clearance exception hierarchy.

Each package defines its own hierarchy under :class:`ClearanceError`; the
command line maps :class:`BadInput` to exit code 2, :class:`Refused` to
exit code 1 and :class:`Unreachable` to exit code 3, so a library error reaches the user as one line, never a
traceback.
"""


class ClearanceError(Exception):
    """Base of all errors raised on purpose by Clearance."""


class BadInput(ClearanceError):  # noqa: N818 - the name says what it is for the user
    """The input (a file, an argument, a document) is malformed or unusable: exit code 2."""


class Refused(ClearanceError):  # noqa: N818
    """A verification or policy check refused: exit code 1."""


class Unreachable(ClearanceError):  # noqa: N818
    """A server could not be reached, answered nonsense or refused the credentials: exit 3.

    Distinct from :class:`Refused` (a check failed) so that a script can tell a
    failed verification from a network or authorisation problem.
    """
