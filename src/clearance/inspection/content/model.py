"""Engine-neutral model of detection content: rule files, rules and their patterns.

Every engine (YARA now; Sigma, hash lists, ClamAV signatures later) parses its
format into these values, so that the checks work on one shape.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Pattern kinds.
TEXT, HEX, REGEX = "text", "hex", "regex"


@dataclass(frozen=True)
class RulePattern:
    """One pattern (YARA string) of a rule, as written: ``value`` keeps escapes."""

    identifier: str
    kind: str
    value: str
    modifiers: tuple[str, ...] = ()
    #: Line in the rule file where the pattern is declared (0 when unknown).
    line: int = 0


@dataclass(frozen=True)
class ContentRule:
    """One detection rule."""

    name: str
    #: The rule file, relative to the artifact root (SARIF ``artifactLocation.uri``).
    uri: str
    start_line: int
    end_line: int
    patterns: tuple[RulePattern, ...] = ()
    condition: str = ""
    condition_terms: tuple[str, ...] = ()
    metadata: tuple[tuple[str, Any], ...] = ()
    tags: tuple[str, ...] = ()
    scopes: tuple[str, ...] = ()
    imports: tuple[str, ...] = ()
    engine: str = "yara"
    #: What identifies the rule across releases when its name does not (ClamAV databases
    #: renumber names; a hash or body signature is its content); "" = the name.
    identity: str = ""

    def meta_values(self, key: str) -> list[Any]:
        return [v for k, v in self.metadata if k.lower() == key.lower()]

    @property
    def key(self) -> str:
        """Identity used to compare releases: file-independent rule name (or content identity)."""
        return self.identity or self.name


@dataclass(frozen=True)
class RuleFile:
    """One content file: where it is, its text, what the parser made of it."""

    uri: str
    path: Path
    engine: str
    text: str
    rules: tuple[ContentRule, ...] = ()
    #: Why the independent parser could not read it ("" when it could).
    parse_error: str = ""
    lines: tuple[str, ...] = field(default=(), repr=False)

    def line_range(self, start: int, end: int) -> str:
        lines = self.lines or tuple(self.text.splitlines())
        return "\n".join(lines[max(start - 1, 0) : end])
