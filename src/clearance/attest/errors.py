"""Exceptions of the attest package: malformed documents are bad input, failed checks refusals."""

from clearance.errors import BadInput, Refused


class AttestFormatError(BadInput):
    """A DSSE envelope, statement, predicate or trust root is malformed."""


class EnvelopeFormatError(AttestFormatError):
    """A DSSE envelope is not valid JSON of the DSSE shape, or its base64 fields are invalid."""


class StatementFormatError(AttestFormatError):
    """An in-toto Statement or one of its predicates does not have the expected shape."""


class VersionFormatError(AttestFormatError):
    """A release version string does not follow the dotted-numeric rule."""


class TrustRootFormatError(AttestFormatError):
    """A trust root document is malformed or inconsistent (e.g. a threshold above its keys)."""


class EnvelopeSignatureError(Refused):
    """A DSSE signature is invalid, or fewer trusted keys than the threshold signed."""


class RotationRefused(Refused):
    """A new trust root is not signed by a threshold of the previous (and new) root keys."""
