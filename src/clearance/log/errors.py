"""Exceptions of the log package.

Bad input (malformed checkpoint, oversized entry, a directory that is not a
log) derives from :class:`clearance.errors.BadInput` (exit 2); anything that
shows a log or checkpoint cannot be trusted derives from
:class:`clearance.errors.Refused` (exit 1).  Proof errors live in
:mod:`clearance.log.merkle` (``ProofError``, ``ProofRequestError``).
"""

from clearance.errors import BadInput, Refused, Unreachable


class LogInputError(BadInput):
    """An argument or file given to the log is unusable (not a log, bad origin, ...)."""


class LogUnreachableError(LogInputError, Unreachable):
    """A log server could not be reached or failed (exit 3 on the command line)."""


class EntryTooLargeError(LogInputError):
    """An entry is longer than the 65535 bytes a tlog-tiles entry bundle can hold."""


class CheckpointFormatError(BadInput):
    """A checkpoint is not in the C2SP tlog-checkpoint format."""


class CheckpointSignatureError(Refused):
    """A checkpoint is not signed by the expected log key, or is for another origin."""


class LogCorruptedError(Refused):
    """The stored log, its published tiles or a served tile disagree with the signed tree."""


class CheckpointSupersededError(Refused):
    """Cosignatures were offered for a checkpoint that is no longer the current one."""


class CheckpointRollbackError(Refused):
    """A checkpoint is for a smaller tree than one already seen (a replayed or frozen view)."""


class CheckpointForkError(Refused):
    """Two checkpoints that cannot both be honest: same size with another root, or a
    consistency proof that fails (a split view)."""


class ConsistencyUnprovenError(Refused):
    """A bigger checkpoint came without the proof that it extends the one seen."""


class ForgedCosignatureError(Refused):
    """A cosignature names a trusted witness key but does not verify."""


class LogUnavailableError(Refused):
    """The log's database cannot be reached (PostgreSQL down, refused or timed out)."""
