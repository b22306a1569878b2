"""HTTP client of the gateway's ``/api/v1`` (used by ``clearance submit/bundle --server``).

Every failure becomes one line: an HTTP 4xx refusal is a :class:`GatewayRefused`
(exit 1) or :class:`GatewayInputError` (exit 2), refused credentials (401/403) a
:class:`GatewayUnauthorizedError` and an unreachable server a
:class:`GatewayUnavailableError` (both :class:`~clearance.errors.Unreachable`,
exit 3), with the server's own explanation.
"""

from __future__ import annotations

import os
from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx

from clearance._untrusted import UntrustedInputError, load_json
from clearance.errors import Unreachable
from clearance.gateway.errors import GatewayInputError, GatewayRefused
from clearance.keys import Verifier
from clearance.log.tiles import HttpTileSource, TiledLogClient

API = "/api/v1"
TOKEN_ENV = "CLEARANCE_TOKEN"  # noqa: S105 - the name of a variable, not a secret


class GatewayUnavailableError(GatewayInputError, Unreachable):
    """The gateway could not be reached or answered nonsense (exit 3)."""


class GatewayUnauthorizedError(GatewayRefused, Unreachable):
    """The gateway refused the credentials (HTTP 401/403: no, wrong or another role's token)."""


def _detail(response: httpx.Response) -> str:
    try:
        body = load_json(response.content, "gateway answer")
    except UntrustedInputError:
        return response.text.strip()[:300] or response.reason_phrase
    if isinstance(body, dict) and "detail" in body:
        return str(body["detail"])
    return str(body)[:300]


class GatewayClient:
    """A connection to one gateway; ``token`` is the API token of the caller's role.

    Without ``token``, the environment variable ``CLEARANCE_TOKEN`` is used (so that
    ``clearance submit --server URL`` can carry the role's token without an option).
    """

    def __init__(self, url: str, token: str | None = None, *, timeout: float = 60.0) -> None:
        self.url = url.rstrip("/")
        token = token or os.environ.get(TOKEN_ENV) or None
        headers = {"User-Agent": "clearance-gateway-client"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def __enter__(self) -> GatewayClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise GatewayUnavailableError(f"{self.url}: cannot reach the gateway ({exc})") from None
        if response.status_code in (401, 403):
            raise GatewayUnauthorizedError(f"{self.url}{path}: {_detail(response)}")
        if response.status_code in (409, 451):
            raise GatewayRefused(f"{self.url}{path}: {_detail(response)}")
        if response.status_code >= 400:
            if response.status_code >= 500:
                raise GatewayUnavailableError(
                    f"{self.url}{path}: server error {response.status_code}: {_detail(response)}"
                )
            raise GatewayInputError(f"{self.url}{path}: {_detail(response)}")
        return response

    def _json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        response = self._request(method, path, **kwargs)
        try:
            body = load_json(response.content, f"{self.url}{path}: answer")
        except UntrustedInputError as exc:
            raise GatewayUnavailableError(str(exc)) from None
        if not isinstance(body, dict):
            raise GatewayUnavailableError(f"{self.url}{path}: answer is not a JSON object")
        return body

    # -- the calls other parts use -----------------------------------------

    def submit(self, envelope_bytes: bytes) -> dict[str, Any]:
        """Submit a signed envelope (release, verdict, policy, entitlement, health, rollout
        decision); returns the receipt: log index, sha256, signed checkpoint, inclusion proof."""
        return self._json(
            "POST",
            f"{API}/submissions",
            content=envelope_bytes,
            headers={"Content-Type": "application/json"},
        )

    def bundle(self, release_sha256: str) -> bytes:
        """The Clearance bundle of an approved release (JSON bytes)."""
        return self._request("GET", f"{API}/bundles/{quote(release_sha256)}").content

    def status(self, sha256: str) -> dict[str, Any]:
        """State of a submission: kind, log index, inspection job, verdicts, rollout."""
        return self._json("GET", f"{API}/submissions/{quote(sha256)}")

    def latest(self, product: str, channel: str, customer: str) -> dict[str, Any]:
        """The newest release of ``product``/``channel`` offered to ``customer``, with the
        newest approved one in the log and, when they differ, the logged reason."""
        return self._json(
            "GET",
            f"{API}/updates/latest",
            params={"product": product, "channel": channel, "customer": customer},
        )

    def download(self, release_sha256: str, artifact: str, customer: str) -> bytes:
        """An artifact of a release, if policy and rollout let ``customer`` have it."""
        return self._request(
            "GET",
            f"{API}/updates/{quote(release_sha256)}/{quote(artifact)}",
            params={"customer": customer},
        ).content

    def entitlements(self, customer: str) -> dict[str, Any]:
        return self._json("GET", f"{API}/entitlements/{quote(customer)}")

    def checkpoint(self) -> bytes:
        return self._request("GET", "/log/checkpoint").content

    def log(self, log_key: Verifier, origin: str) -> TiledLogClient:
        """The gateway's log as a :class:`~clearance.log.LogReader`: its public tiles over
        HTTP, every tile and entry checked against checkpoints signed by ``log_key``
        (call ``.checkpoint()`` on it first)."""
        return TiledLogClient(HttpTileSource(f"{self.url}/log/"), log_key, origin)

    def trust_root(self) -> bytes:
        return self._request("GET", "/trust-root.json").content

    def upload_artifact(self, data: bytes) -> dict[str, Any]:
        """Upload one artifact of a release (vendor token); stored by its SHA-256."""
        import hashlib

        digest = hashlib.sha256(data).hexdigest()
        return self._json(
            "PUT",
            f"{API}/artifacts/{digest}",
            content=data,
            headers={"Content-Type": "application/octet-stream"},
        )

    def artifact(self, sha256: str) -> bytes:
        """An uploaded artifact by digest (inspector token), checked against the digest."""
        import hashlib

        data = self._request("GET", f"{API}/artifacts/{quote(sha256)}").content
        if hashlib.sha256(data).hexdigest() != sha256:
            raise GatewayUnavailableError(f"{self.url}: artifact {sha256} came back altered")
        return data

    def health(self) -> dict[str, Any]:
        return self._json("GET", f"{API}/health")
