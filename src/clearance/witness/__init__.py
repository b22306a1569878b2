"""Witnesses (C2SP tlog-witness, tlog-cosignature): the service that cosigns consistent
checkpoints, and the collector a log uses to gather cosignatures."""

from clearance.witness.collector import (
    CollectionResult,
    WitnessConfig,
    WitnessFailure,
    collect_cosignatures,
)
from clearance.witness.errors import (
    InconsistentCheckpoint,
    MalformedRequest,
    SizeConflict,
    ThresholdNotMet,
    UnknownLog,
    UntrustedCheckpoint,
    WitnessConfigError,
    WitnessStateError,
)
from clearance.witness.protocol import AddCheckpointRequest
from clearance.witness.state import Conflict, CosignedCheckpoint, WitnessState
from clearance.witness.witness import LogConfig, Witness

__all__ = [
    "AddCheckpointRequest",
    "CollectionResult",
    "Conflict",
    "CosignedCheckpoint",
    "InconsistentCheckpoint",
    "LogConfig",
    "MalformedRequest",
    "SizeConflict",
    "ThresholdNotMet",
    "UnknownLog",
    "UntrustedCheckpoint",
    "Witness",
    "WitnessConfig",
    "WitnessConfigError",
    "WitnessFailure",
    "WitnessState",
    "WitnessStateError",
    "collect_cosignatures",
]
