"""Who the customers are, privately: entitlements (clear or opened), their devices, and
requests authenticated by a device key.

The log holds only commitments to entitlements (:mod:`clearance.policy.commitment`);
the openings the vendor hands the gateway are kept in the metadata store, never in
the log or the public API.  From them (and from legacy entitlements logged in clear)
the gateway knows each customer's entitlements and device keys, so that

* a device **authenticates as its customer** by signing its request with a device
  key its entitlement names (:func:`request_message`; headers
  ``Clearance-Device: <key id>``, ``Clearance-Time: <unix seconds>``,
  ``Clearance-Signature: <base64 Ed25519>``): there is no shared client token and no
  ``?customer=`` a client may choose;
* a health report counts for the customer whose entitlement names the signing key.
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from clearance._files import write_private
from clearance.attest.dsse import key_id
from clearance.errors import BadInput
from clearance.gateway.errors import GatewayInputError, GatewayRefused
from clearance.gateway.store import MetadataStore
from clearance.keys import Signer, Verifier
from clearance.policy import Entitlement
from clearance.policy.commitment import EntitlementOpening

#: How far a signed request's time may be from the gateway's clock (replay window).
MAX_SKEW_SECONDS = 300
HEADER_DEVICE = "clearance-device"
HEADER_TIME = "clearance-time"
HEADER_SIGNATURE = "clearance-signature"


class DeviceAuthError(GatewayRefused):
    """A request's device signature is missing, unknown, stale or invalid."""


def request_message(method: str, path_and_query: str, timestamp: int) -> bytes:
    """What a device signs: ``clearance-request-v1 METHOD PATH?QUERY TIME``."""
    return f"clearance-request-v1\n{method.upper()}\n{path_and_query}\n{timestamp}".encode()


class Openings(Protocol):
    """Where entitlement openings are kept: :class:`OpeningStore` (files) or, for replicas
    on several machines, :class:`~clearance.gateway.shared_files.PostgresOpeningStore`."""

    def add(self, log_index: int, opening: EntitlementOpening) -> None: ...
    def all(self) -> list[tuple[int, EntitlementOpening]]: ...
    def of(self, customer: str) -> list[tuple[int, EntitlementOpening]]: ...
    def close(self) -> None: ...


class OpeningStore:
    """Entitlement openings the vendor handed the gateway: private files (mode 0600) under
    ``data_dir/openings/``, apart from the metadata index (which is rebuilt from the log and
    cannot rebuild these: the log holds only commitments)."""

    def __init__(self, directory: Path) -> None:
        self._dir = directory
        self._dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def add(self, log_index: int, opening: EntitlementOpening) -> None:
        path = self._dir / f"{opening.commitment}.json"
        body = json.dumps({"log_index": log_index, "opening": opening.to_dict()}, sort_keys=True)
        with self._lock:
            if path.exists():
                return
            write_private(path, body)

    def all(self) -> list[tuple[int, EntitlementOpening]]:
        out = []
        with self._lock:
            for path in sorted(self._dir.glob("*.json")):
                data = json.loads(path.read_text())
                out.append((int(data["log_index"]), EntitlementOpening.from_dict(data["opening"])))
        return sorted(out, key=lambda item: item[0])

    def of(self, customer: str) -> list[tuple[int, EntitlementOpening]]:
        return [(i, o) for i, o in self.all() if o.entitlement.customer == customer]

    def close(self) -> None:
        """Nothing held open (the interface's: a database store closes its pool)."""


@dataclass(frozen=True)
class Device:
    customer: str
    key: Verifier


class Customers:
    def __init__(self, store: MetadataStore, openings: Openings) -> None:
        self._store = store
        self.openings = openings

    def entitlements(self, customer: str) -> list[Entitlement]:
        """The customer's entitlements: legacy clear ones and every opening kept."""
        out = [Entitlement.from_dict(body) for _, body in self._store.entitlements(customer)]
        out += [opening.entitlement for _, opening in self.openings.of(customer)]
        return out

    def opening(self, customer: str, product: str) -> tuple[int, EntitlementOpening] | None:
        """The newest kept opening of ``customer`` for ``product``, with its log index."""
        best: tuple[int, EntitlementOpening] | None = None
        for index, opening in self.openings.of(customer):
            if opening.entitlement.product == product and (best is None or index > best[0]):
                best = (index, opening)
        return best

    def devices(self) -> dict[str, Device]:
        """Device key id -> its customer and key, from every entitlement the gateway knows."""
        found: dict[str, Device] = {}
        bodies: list[Mapping[str, object]] = [b for _, b in self._store.entitlements()]
        bodies += [o.entitlement.to_dict() for _, o in self.openings.all()]
        for body in bodies:
            keys = body.get("client_keys", [])
            if not isinstance(keys, list):
                continue
            for text in keys:
                try:
                    key = Verifier.parse(str(text))
                except BadInput:
                    continue
                found.setdefault(key_id(key), Device(str(body.get("customer")), key))
        return found

    def authenticate(
        self, method: str, path_and_query: str, headers: Mapping[str, str], now: int
    ) -> str:
        """The customer a device-signed request comes from; refuse anything else."""
        device_id = headers.get(HEADER_DEVICE)
        stamp = headers.get(HEADER_TIME)
        signature = headers.get(HEADER_SIGNATURE)
        if not device_id or not stamp or not signature:
            raise DeviceAuthError(
                "this request must be signed by a device key of the customer's entitlement "
                f"(headers {HEADER_DEVICE}, {HEADER_TIME}, {HEADER_SIGNATURE})"
            )
        try:
            timestamp = int(stamp)
            raw = base64.b64decode(signature, validate=True)
        except (ValueError, binascii.Error):
            raise GatewayInputError("malformed device signature headers") from None
        if abs(now - timestamp) > MAX_SKEW_SECONDS:
            raise DeviceAuthError(f"device request time is more than {MAX_SKEW_SECONDS} s off")
        device = self.devices().get(device_id)
        if device is None:
            raise DeviceAuthError(f"device key {device_id} is named by no entitlement")
        if not device.key.verify(request_message(method, path_and_query, timestamp), raw):
            raise DeviceAuthError(f"invalid request signature by device {device_id}")
        return device.customer


def sign_request(
    signer: Signer, method: str, path_and_query: str, timestamp: int
) -> dict[str, str]:
    """The headers a device sends with a request."""
    sig = signer.sign(request_message(method, path_and_query, timestamp))
    return {
        HEADER_DEVICE: key_id(signer.verifier),
        HEADER_TIME: str(timestamp),
        HEADER_SIGNATURE: base64.b64encode(sig).decode(),
    }
