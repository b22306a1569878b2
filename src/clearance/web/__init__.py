"""The gateway's HTML dashboard: releases, verdicts, rollout rings, log size.

``mount(app, gateway)`` adds ``GET /`` (the dashboard) and
``GET /releases/<sha256>`` (one release: verdicts, rollout transitions with
their log indices).  Read-only; everything shown is also in ``/api/v1``.
"""

from clearance.web.dashboard import mount

__all__ = ["mount"]
