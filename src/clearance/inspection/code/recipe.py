"""Build recipes: how a release says each binary is built from a source artifact.

The release predicate carries ``build_recipes`` as
``{binary artifact name: {"source": source artifact name, "command": [argv...] or str,
"env": {name: value}, "output": relative path}}``; a few optional keys tune the
rebuild (``"timeout_seconds"``, ``"max_output_bytes"``, ``"build_path"``).
A string command runs under ``/bin/sh -c``; a list runs as is.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from clearance.inspection.code.errors import RecipeError

#: Where the source tree is placed inside the rebuild sandbox, unless the recipe says otherwise.
#: Fixed, so that paths a compiler embeds (``__FILE__``, debug info) are the same on every rebuild.
DEFAULT_BUILD_PATH = "/tmp/clearance-build/src"
DEFAULT_TIMEOUT_SECONDS = 600.0
DEFAULT_MAX_OUTPUT_BYTES = 1 << 30
#: 1980-01-01T00:00:00Z, the earliest time a zip (wheel) can record.
DEFAULT_SOURCE_DATE_EPOCH = "315532800"

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_RESERVED_ENV = frozenset({"PATH", "HOME", "TMPDIR"})


@dataclass(frozen=True)
class BuildRecipe:
    """How one binary artifact is rebuilt from one source artifact."""

    binary: str
    source: str
    command: tuple[str, ...]
    output: str
    env: Mapping[str, str] = field(default_factory=dict)
    shell: bool = False
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES
    build_path: str = DEFAULT_BUILD_PATH

    @classmethod
    def from_dict(cls, binary: str, data: Mapping[str, Any]) -> BuildRecipe:
        """Parse and check one recipe; raises :class:`RecipeError` naming the binary."""
        where = f"build recipe for {binary!r}"
        if not isinstance(data, Mapping):
            raise RecipeError(f"{where}: expected an object, got {type(data).__name__}")
        source = data.get("source")
        if not isinstance(source, str) or not source:
            raise RecipeError(f"{where}: 'source' must name a source artifact")
        raw_command = data.get("command")
        shell = isinstance(raw_command, str)
        if shell:
            assert isinstance(raw_command, str)
            if not raw_command.strip():
                raise RecipeError(f"{where}: 'command' is empty")
            command: tuple[str, ...] = (raw_command,)
        elif (
            isinstance(raw_command, list)
            and raw_command
            and all(isinstance(a, str) and a for a in raw_command)
        ):
            command = tuple(raw_command)
        else:
            raise RecipeError(f"{where}: 'command' must be a string or a non-empty list of strings")
        output = data.get("output")
        if not isinstance(output, str) or not output:
            raise RecipeError(f"{where}: 'output' must be a relative path")
        out_path = PurePosixPath(output)
        if out_path.is_absolute() or ".." in out_path.parts:
            raise RecipeError(f"{where}: 'output' {output!r} must stay inside the source tree")
        env_data = data.get("env", {})
        if not isinstance(env_data, Mapping):
            raise RecipeError(f"{where}: 'env' must be an object of strings")
        env: dict[str, str] = {}
        for key, value in env_data.items():
            if not isinstance(key, str) or not _ENV_NAME.fullmatch(key):
                raise RecipeError(f"{where}: bad environment variable name {key!r}")
            if key in _RESERVED_ENV:
                raise RecipeError(f"{where}: {key} is set by the sandbox and cannot be overridden")
            if not isinstance(value, str):
                raise RecipeError(f"{where}: environment value of {key} must be a string")
            env[key] = value
        timeout = data.get("timeout_seconds", DEFAULT_TIMEOUT_SECONDS)
        if not isinstance(timeout, int | float) or isinstance(timeout, bool) or timeout <= 0:
            raise RecipeError(f"{where}: 'timeout_seconds' must be a positive number")
        max_bytes = data.get("max_output_bytes", DEFAULT_MAX_OUTPUT_BYTES)
        if not isinstance(max_bytes, int) or isinstance(max_bytes, bool) or max_bytes <= 0:
            raise RecipeError(f"{where}: 'max_output_bytes' must be a positive integer")
        build_path = data.get("build_path", DEFAULT_BUILD_PATH)
        if (
            not isinstance(build_path, str)
            or not PurePosixPath(build_path).is_absolute()
            or ".." in PurePosixPath(build_path).parts
            or len(PurePosixPath(build_path).parts) < 3
        ):
            raise RecipeError(
                f"{where}: 'build_path' must be an absolute path at least two levels deep"
            )
        return cls(
            binary=binary,
            source=source,
            command=command,
            output=output,
            env=env,
            shell=shell,
            timeout_seconds=float(timeout),
            max_output_bytes=max_bytes,
            build_path=build_path,
        )

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "source": self.source,
            "command": self.command[0] if self.shell else list(self.command),
            "env": dict(self.env),
            "output": self.output,
        }
        if self.timeout_seconds != DEFAULT_TIMEOUT_SECONDS:
            data["timeout_seconds"] = self.timeout_seconds
        if self.max_output_bytes != DEFAULT_MAX_OUTPUT_BYTES:
            data["max_output_bytes"] = self.max_output_bytes
        if self.build_path != DEFAULT_BUILD_PATH:
            data["build_path"] = self.build_path
        return data

    def argv(self) -> list[str]:
        return ["/bin/sh", "-c", self.command[0]] if self.shell else list(self.command)


def parse_recipes(recipes: Mapping[str, Mapping[str, Any]]) -> dict[str, BuildRecipe]:
    """Parse the release's ``build_recipes`` mapping (binary name -> recipe)."""
    return {name: BuildRecipe.from_dict(name, data) for name, data in sorted(recipes.items())}
