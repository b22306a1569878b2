"""What a parsed rule looks for: decoded literals, signs of code, of documents, of identity.

Shared by the checks; works on :class:`~.model.ContentRule` (the parsed rule),
never on the raw text of the rule file.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from clearance.inspection.content import (
    _condition,
    _decode,
    lexicon,
    targets,
    textdecode,
    yara_terms,
)
from clearance.inspection.content.model import HEX, REGEX, TEXT, ContentRule, RulePattern

_EXEC_EXTENSIONS = (
    ".exe",
    ".dll",
    ".scr",
    ".ps1",
    ".bat",
    ".cmd",
    ".vbs",
    ".js",
    ".jar",
    ".hta",
    ".lnk",
    ".sys",
    ".so",
    ".sh",
    ".elf",
    ".msi",
    ".com",
)
_HEX_BYTE = re.compile(r"^[0-9A-Fa-f]{2}$")
_INT = re.compile(r"^(0x[0-9A-Fa-f]+|\d+)$")


@dataclass(frozen=True)
class Literal:
    """Readable content of one pattern (one of possibly several decodings)."""

    pattern: RulePattern
    text: str  # upper-cased, whitespace collapsed

    @property
    def raw(self) -> str:
        return self.pattern.value


def _normalise(text: str) -> str:
    return " ".join(text.replace("\x00", "").split()).upper()


def hex_runs(value: str) -> list[bytes]:
    """Concrete byte runs of a hex pattern (wildcards, jumps and alternatives split runs)."""
    return list(_hex_runs(value))


_PLAIN_HEX = re.compile(r"[0-9A-Fa-f\s]*")


@lru_cache(maxsize=65536)
def _hex_runs(value: str) -> tuple[bytes, ...]:
    body = value.strip().lstrip("{").rstrip("}")
    if _PLAIN_HEX.fullmatch(body):  # only bytes: one run (most ClamAV body signatures)
        try:
            data = bytes.fromhex(body)
        except ValueError:
            data = b""
        if data or not body.strip():
            return (data,) if data else ()
    body = re.sub(r"//[^\n]*|/\*.*?\*/", " ", body, flags=re.DOTALL)
    runs: list[bytes] = []
    current = bytearray()
    for token in re.split(r"(\s+|\[[^\]]*\]|[()|])", body):
        token = token.strip()
        if not token:
            continue
        if _HEX_BYTE.match(token):
            current.append(int(token, 16))
        else:
            if current:
                runs.append(bytes(current))
            current = bytearray()
    if current:
        runs.append(bytes(current))
    return tuple(runs)


def regex_literal_runs(value: str) -> list[str]:
    """Literal character runs of a regex (approximate; used for word lists only)."""
    body = _decode.collapse_case_classes(value)
    if body.startswith("/"):
        body = body[1 : body.rfind("/")] if body.rfind("/") > 0 else body[1:]
    body = re.sub(r"\\s[+*?]?|\\x20|\[ \]|\[\\s_-]|\[ _-]\??|\\W[+*?]?", " ", body)
    body = re.sub(r"\\x([0-9A-Fa-f]{2})", lambda m: chr(int(m.group(1), 16)), body)
    body = re.sub(r"\\(.)", r"\1", body)
    body = re.sub(r"\{\d*,?\d*\}|\[[^\]]*\]|[.*+?^$()|]", "\x01", body)
    return [r for r in body.split("\x01") if r.strip()]


@lru_cache(maxsize=65536)
def _pattern_literals(pattern: RulePattern) -> tuple[str, ...]:
    if pattern.kind == TEXT:
        raw = [pattern.value]
    elif pattern.kind == REGEX:
        raw = regex_literal_runs(pattern.value)
    else:
        raw = [text for run in hex_runs(pattern.value) for text in _decode.byte_decodings(run)]
    texts: list[str] = []
    for text in raw:
        texts.append(text)
        texts.extend(_decode.text_disguises(text))
    return tuple(dict.fromkeys(n for n in (_normalise(t) for t in texts) if n))


def pattern_texts(pattern: RulePattern) -> tuple[str, ...]:
    """The decoded, upper-cased readings of one pattern."""
    return _pattern_literals(pattern)


def literals(rule: ContentRule) -> list[Literal]:
    return [Literal(p, t) for p in rule.patterns for t in _pattern_literals(p)]


def _int_terms(rule: ContentRule) -> list[int]:
    return [
        int(t, 16) if t.startswith("0x") else int(t) for t in rule.condition_terms if _INT.match(t)
    ]


def code_evidence(rule: ContentRule) -> list[str]:
    """Why the rule is about executable code (empty when nothing shows it)."""
    try:
        return list(_code_evidence_cached(rule))
    except TypeError:  # metadata holding an unhashable value
        return _code_evidence(rule)


@lru_cache(maxsize=4096)
def _code_evidence_cached(rule: ContentRule) -> tuple[str, ...]:
    return tuple(_code_evidence(rule))


def _code_evidence(rule: ContentRule) -> list[str]:
    reasons: list[str] = targets.code_targets(rule)
    for module in rule.imports:
        if module in lexicon.CODE_MODULES:
            reasons.append(f"uses the {module} module")
    for term in rule.condition_terms:
        head = term.split(".", 1)[0]
        if (
            "." in term
            and head in lexicon.CODE_MODULES
            and f"uses the {head} module" not in reasons
        ):
            reasons.append(f"uses the {head} module")
    for value in _int_terms(rule):
        if value in lexicon.CODE_MAGICS:
            reasons.append(f"checks an executable magic number (0x{value:x})")
            break
    for p in rule.patterns:
        indicator = _pattern_code_indicator(p)
        if indicator is not None:
            reasons.append(f"{p.identifier} contains code indicator {indicator!r}")
            break
    for var, _op, literal in yara_terms.external_comparisons(rule):
        low = literal.lower()
        ext = next((e for e in _EXEC_EXTENSIONS if e in low), None)
        if var in ("filename", "filepath", "extension") and ext:
            reasons.append(f"compares {var} with the executable extension {ext!r}")
            break
    for p in rule.patterns:
        if p.kind == HEX and _binary_heavy(p.value):
            reasons.append(f"{p.identifier} is a binary (non-text) byte pattern")
            break
    return reasons


def code_pattern_ids(rule: ContentRule) -> frozenset[str]:
    """Identifiers (without ``$``) of the patterns that are themselves evidence of code."""
    return frozenset(
        p.identifier.lstrip("$")
        for p in rule.patterns
        if (p.kind == HEX and _binary_heavy(p.value)) or _pattern_code_indicator(p) is not None
    )


@lru_cache(maxsize=65536)
def _pattern_code_indicator(pattern: RulePattern) -> str | None:
    """The first code indicator in any reading of the pattern (cached: asked by several checks)."""
    for text in _pattern_literals(pattern):
        found = _CODE.search(text.lower())
        if found:
            return found.group(0)
    return None


def _atom_shows_code(atom: Sequence[str]) -> bool:
    """A condition atom that holds only for executables: module fields, magic numbers."""
    for i, term in enumerate(atom):
        head = term.split(".", 1)[0]
        if head in lexicon.CODE_MODULES and (
            "." in term or (i + 1 < len(atom) and atom[i + 1] == ".")
        ):
            return True
        if _INT.match(term):
            value = int(term, 16) if term.startswith("0x") else int(term)
            if value in lexicon.CODE_MAGICS and any(t.startswith(("uint", "int")) for t in atom):
                return True
        if term in ("filename", "filepath", "extension"):
            rest = " ".join(atom).lower()
            if any(e in rest for e in _EXEC_EXTENSIONS):
                return True
    return False


def code_on_every_path(rule: ContentRule) -> bool:
    """Whether the rule's condition can only be true when code evidence is present.

    The exemption "this rule is about code" holds only then; a condition the
    analysis cannot read gets no exemption (a doubt never favours the rule).
    """
    if not code_evidence(rule):
        return False
    if targets.code_targets(rule):
        return True  # the engine runs the rule on executables only
    if rule.engine != "yara":
        # Other engines' logic is not read here yet: code shown anywhere counts.
        return True
    if any(m in lexicon.CODE_MODULES for m in rule.imports) and not rule.condition_terms:
        return True
    facts = _condition.ConditionFacts(
        identifiers=tuple(p.identifier.lstrip("$") for p in rule.patterns),
        code_identifiers=code_pattern_ids(rule),
        atom_shows_code=_atom_shows_code,
    )
    try:
        return _condition.code_required(rule.condition_terms, facts)
    except _condition.UnreadableConditionError:
        return False


def _binary_heavy(value: str) -> bool:
    data = b"".join(hex_runs(value))
    if len(data) < 4:
        return False
    if any(data.startswith(m) for m in (b"%PDF", b"{\\rt", b"\xd0\xcf\x11\xe0", b"PK\x03\x04")):
        return False
    text_like = sum(1 for b in data if 32 <= b < 127 or b in (0, 9, 10, 13))
    if text_like / len(data) >= 0.7:
        return False
    # Text in a legacy or multi-byte encoding (CP1251, GBK, Shift-JIS...) is not binary.
    return not any(textdecode.looks_like_text(run) for run in hex_runs(value) if len(run) >= 4)


def document_evidence(rule: ContentRule) -> list[str]:
    """Signs the rule targets document, mail or archive formats."""
    reasons: list[str] = targets.document_targets(rule)
    for value in _int_terms(rule):
        if value in lexicon.DOCUMENT_MAGICS:
            reasons.append(
                f"checks the {lexicon.DOCUMENT_MAGICS[value]} magic number (0x{value:x})"
            )
    for p in rule.patterns:
        candidates = list(_pattern_literals(p))
        if p.kind == HEX:
            candidates += [run.decode("latin-1").upper() for run in hex_runs(p.value)]
        for text in candidates:
            low = text.lower()
            for needle, what in lexicon.DOCUMENT_STRINGS:
                if needle in low:
                    reasons.append(f"{p.identifier} looks for {what} content ({needle!r})")
                    break
            else:
                continue
            break
    for ext, _op, literal in yara_terms.external_comparisons(rule):
        if ext in ("filename", "filepath", "extension"):
            low = literal.lower()
            for doc in lexicon.DOCUMENT_EXTENSIONS:
                if re.search(rf"(\.|\b|\\\.|^){re.escape(doc)}(\b|\$|\)|/|\"|$)", low) and (
                    ext == "extension" or f".{doc}" in low or f"\\.{doc}" in low
                ):
                    reasons.append(f"compares {ext} with the document extension {doc!r}")
                    break
    return list(dict.fromkeys(reasons))


_CJK = 0x2E80


class _WordFinder:
    """A bounded alternation of words, behind a plain one that rules most texts out.

    Python's regex engine skips ahead by first character only when an alternation
    starts with literals; per-word boundary assertions defeat that and made the
    search twenty times slower on the hundred thousand literals of a real rule set.
    """

    def __init__(self, words: tuple[str, ...], bounded: re.Pattern[str]) -> None:
        ordered = sorted(words, key=len, reverse=True)
        self._plain = re.compile("|".join(re.escape(w) for w in ordered))
        self._bounded = bounded

    def search(self, text: str) -> re.Match[str] | None:
        if self._plain.search(text) is None:
            return None
        return self._bounded.search(text)


def _word_regex(words: tuple[str, ...]) -> _WordFinder:
    """One alternation; a word starting or ending with a letter must not be glued to letters."""
    parts = []
    for w in sorted(words, key=len, reverse=True):
        # Chinese and Japanese write no spaces between words: no boundary there.
        left = r"(?<![^\W\d_])" if w[0].isalpha() and ord(w[0]) < _CJK else ""
        right = r"(?![^\W\d_])" if w[-1].isalpha() and ord(w[-1]) < _CJK else ""
        parts.append(f"{left}{re.escape(w)}{right}")
    return _WordFinder(words, re.compile("|".join(parts)))


_STRONG = _word_regex(lexicon.STRONG_MARKINGS)
_KEYWORDS = _word_regex(tuple(k.strip() for k in lexicon.KEYWORDS))


def _code_regex(words: tuple[str, ...]) -> _WordFinder:
    """Code indicators; a short one ("ole", "cmd", ".so") must stand alone as a word.

    Without the word boundary "ole" is found in "console" and ".so" in ".social",
    and one such accident exempted a whole rule from the document checks.
    """
    parts = []
    for w in sorted(words, key=len, reverse=True):
        core = w.strip("./\\ ")
        bounded = len(core) <= 4
        left = r"(?<![a-z0-9])" if bounded and w[0].isalnum() else ""
        right = r"(?![a-z0-9])" if bounded and w[-1].isalnum() else ""
        parts.append(f"{left}{re.escape(w)}{right}")
    return _WordFinder(words, re.compile("|".join(parts)))


_CODE = _code_regex(lexicon.CODE_STRINGS)


def markings(rule: ContentRule) -> list[tuple[Literal, str, str]]:
    """(literal, marking, strength) for classification and handling markings."""
    hits: list[tuple[Literal, str, str]] = []
    for lit in literals(rule):
        text = lit.text
        found = _STRONG.search(text)
        if found:
            hits.append((lit, found.group(0), "strong"))
            continue
        core = re.sub(r"[^0-9A-ZÀ-ÿА-Я]+", " ", text).strip()
        weak = next((m for m in lexicon.WEAK_MARKINGS if core == m), None)
        if weak:
            hits.append((lit, weak, "weak"))
    return hits


def keywords(rule: ContentRule) -> list[tuple[Literal, str]]:
    hits = []
    for lit in literals(rule):
        found = _KEYWORDS.search(lit.text)
        if found:
            hits.append((lit, found.group(0)))
    return hits
