from __future__ import annotations

from .support import live  # noqa: F401 - the fixture
