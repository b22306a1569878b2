"""YARA rules as the analysis sees them: plyara's parse (from the sandbox) as :class:`ContentRule`."""

from __future__ import annotations

from typing import Any

from clearance.inspection.content.model import ContentRule, RulePattern


def _unescape(value: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(value):
        ch = value[i]
        if ch == "\\" and i + 1 < len(value):
            nxt = value[i + 1]
            if nxt == "x" and i + 3 < len(value) + 0:
                try:
                    out.append(chr(int(value[i + 2 : i + 4], 16)))
                    i += 4
                    continue
                except ValueError:
                    pass
            out.append({"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"'}.get(nxt, nxt))
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def to_rule(uri: str, lines: tuple[str, ...], raw: dict[str, Any]) -> ContentRule:
    start, end = int(raw["start"]), int(raw["end"])
    # One pass over the rule's lines: the line of each declared string identifier
    # (a lookup per string would be quadratic in a rule of 40,000 strings).
    declared: dict[str, int] = {}
    for number in range(start, min(end, len(lines)) + 1):
        stripped = lines[number - 1].lstrip()
        if stripped.startswith("$"):
            ident_end = 1
            while ident_end < len(stripped) and (
                stripped[ident_end].isalnum() or stripped[ident_end] == "_"
            ):
                ident_end += 1
            if stripped[ident_end:].lstrip().startswith("="):
                declared.setdefault(stripped[:ident_end], number)
    patterns = []
    for s in raw["strings"]:
        ident = s["id"]
        line = declared.get(ident, 0)
        value = _unescape(s["value"]) if s["kind"] == "text" else s["value"]
        patterns.append(RulePattern(ident, s["kind"], value, tuple(s["modifiers"]), line))
    return ContentRule(
        name=raw["name"],
        uri=uri,
        start_line=start,
        end_line=end,
        patterns=tuple(patterns),
        condition=raw["condition"],
        condition_terms=tuple(raw["terms"]),
        metadata=tuple((k, v) for k, v in raw["metadata"]),
        tags=tuple(raw["tags"]),
        scopes=tuple(raw["scopes"]),
        imports=tuple(raw["imports"]),
        engine="yara",
    )
