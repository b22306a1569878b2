"""Can a YARA condition be true without any sign of executable code?

The document-hunting and exfiltration checks exempt rules "about code": an
honest malicious-document rule looks for macros, exploits or shellcode.  A
disguised rule meets that exemption with one code-like string somewhere --
negated (``not any of ($api*)``) or in an optional branch (``... or any of
($sensitive*)``).  So the question asked here is not "does code evidence
appear" but "is code evidence required on every way the condition can be
true".

The condition is read from the parser's tokens into a small boolean tree
(``and``/``or``/``not`` over atoms).  Each atom is *code* when it can only be
true if code evidence is present (a code string matched, a PE/ELF module
field, an executable magic number), *free* otherwise.  Quantified sets
(``any of ($a*)``, ``2 of them``, ``all of ...``) are judged by how many of
their members are code strings.  The tree is then evaluated with every code
atom false: if it can still be true, code is not required.  Each occurrence
of a free atom is treated independently, which over-approximates "can be
true": a doubt resolves against the exemption, never for it.

Linear in the number of tokens; recursion depth is bounded by the caller's
token budget (deeply nested input is refused by raising :class:`UnreadableConditionError`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

_MAX_DEPTH = 200
_QUANTIFIERS = frozenset({"any", "all", "none"})
_STRING_REF = re.compile(r"^[$#@!]([A-Za-z0-9_]*)(\*?)$")
_COMPARISON = frozenset({"==", "!=", "<", ">", "<=", ">="})


class UnreadableConditionError(ValueError):
    """The condition's tokens do not form a condition this analysis can read."""


@dataclass(frozen=True)
class _Reach:
    """Whether a sub-condition can be true / false when every code atom is false."""

    can_true: bool
    can_false: bool


_FREE = _Reach(True, True)
_CODE = _Reach(False, True)


@dataclass(frozen=True)
class ConditionFacts:
    """What the caller knows about the rule, for classifying atoms."""

    #: String identifiers (without the sigil) of every pattern of the rule.
    identifiers: tuple[str, ...]
    #: Identifiers of patterns that are themselves evidence of code.
    code_identifiers: frozenset[str]
    #: Whether an atom's other tokens show code (module fields, magic numbers...).
    atom_shows_code: Callable[[Sequence[str]], bool]


def code_required(terms: Sequence[str], facts: ConditionFacts) -> bool:
    """True when the condition cannot be true unless code evidence is present.

    Raises :class:`UnreadableConditionError` when the tokens cannot be read as a condition.
    """
    if not terms:
        return False
    parser = _Parser(list(terms), facts)
    reach = parser.parse_or(0)
    if parser.pos != len(parser.terms):
        raise UnreadableConditionError(f"unexpected {parser.terms[parser.pos]!r} in the condition")
    return not reach.can_true


class _Parser:
    def __init__(self, terms: list[str], facts: ConditionFacts) -> None:
        self.terms = terms
        self.pos = 0
        self.facts = facts

    def _peek(self) -> str | None:
        return self.terms[self.pos] if self.pos < len(self.terms) else None

    def parse_or(self, depth: int) -> _Reach:
        self._check_depth(depth)
        reach = self.parse_and(depth + 1)
        while self._peek() == "or":
            self.pos += 1
            other = self.parse_and(depth + 1)
            reach = _Reach(reach.can_true or other.can_true, reach.can_false and other.can_false)
        return reach

    def parse_and(self, depth: int) -> _Reach:
        reach = self.parse_not(depth)
        while self._peek() == "and":
            self.pos += 1
            other = self.parse_not(depth)
            reach = _Reach(reach.can_true and other.can_true, reach.can_false or other.can_false)
        return reach

    def parse_not(self, depth: int) -> _Reach:
        self._check_depth(depth)
        if self._peek() == "not":
            self.pos += 1
            inner = self.parse_not(depth + 1)
            return _Reach(inner.can_false, inner.can_true)
        return self.parse_primary(depth)

    def parse_primary(self, depth: int) -> _Reach:
        head = self._peek()
        if head is None:
            raise UnreadableConditionError("the condition ends where an operand was expected")
        if head == "(":
            start = self.pos
            self.pos += 1
            inner = self.parse_or(depth + 1)
            if self._peek() != ")":
                raise UnreadableConditionError("unbalanced parentheses in the condition")
            self.pos += 1
            following = self._peek()
            if following is not None and following not in ("and", "or", ")"):
                # "(#a + #b) > 3": arithmetic, not a group; the whole span is one atom.
                self.pos = start
                return self._atom()
            return inner
        return self._atom()

    def _atom(self) -> _Reach:
        """Consume tokens up to a boolean operator or closing parenthesis at this level."""
        start = self.pos
        nesting = 0
        while self.pos < len(self.terms):
            token = self.terms[self.pos]
            if token in ("(", "["):
                nesting += 1
            elif token in (")", "]"):
                if nesting == 0:
                    break
                nesting -= 1
            elif nesting == 0 and token in ("and", "or"):
                break
            self.pos += 1
        if nesting != 0:
            raise UnreadableConditionError("unbalanced parentheses in the condition")
        atom = self.terms[start : self.pos]
        if not atom:
            raise UnreadableConditionError(f"an operand is missing before {self._peek()!r}")
        return self._classify(atom)

    def _classify(self, atom: list[str]) -> _Reach:
        if atom[0] == "for":
            # A loop: true only when its body is, for some element; the body's own
            # references decide (any code-only body makes the loop code).
            return self._classify_refs(atom[1:])
        if len(atom) >= 2 and atom[1] == "of":
            return self._quantified(atom)
        return self._classify_refs(atom)

    def _classify_refs(self, atom: list[str]) -> _Reach:
        if self.facts.atom_shows_code(atom):
            return _CODE
        refs = [_STRING_REF.match(t) for t in atom]
        named = [m for m in refs if m is not None]
        if not named:
            return _FREE
        if any(t in _COMPARISON for t in atom) and any(m.group(0)[0] == "#" for m in named):
            # "#api == 0" is true when the string is absent: a count compared is free.
            return _FREE
        members = self._members([m.group(0) for m in named])
        if members and all(m in self.facts.code_identifiers for m in members):
            return _CODE
        return _FREE

    def _members(self, refs: Sequence[str]) -> list[str]:
        out: list[str] = []
        for ref in refs:
            m = _STRING_REF.match(ref)
            if m is None:
                continue
            name, wildcard = m.group(1), m.group(2)
            if wildcard:
                out += [i for i in self.facts.identifiers if i.startswith(name)]
            elif name:
                out.append(name)
        return out

    def _quantified(self, atom: list[str]) -> _Reach:
        quantity, rest = atom[0], atom[2:]
        if rest and rest[0] == "them":
            members = list(self.facts.identifiers)
        else:
            members = self._members(rest)
        if not members:
            return _FREE
        code = sum(1 for m in members if m in self.facts.code_identifiers)
        free = len(members) - code
        if quantity == "none":
            return _FREE
        if quantity == "all":
            return _Reach(code == 0, True)
        if quantity == "any":
            needed = 1
        elif re.fullmatch(r"\d+", quantity):
            needed = int(quantity)
        elif quantity.endswith("%") and quantity[:-1].isdigit():
            needed = -(-len(members) * int(quantity[:-1]) // 100)
        else:
            return _FREE
        return _Reach(free >= needed, True)

    def _check_depth(self, depth: int) -> None:
        if depth > _MAX_DEPTH:
            raise UnreadableConditionError("the condition is nested too deeply to analyse")


__all__ = ["ConditionFacts", "UnreadableConditionError", "code_required"]
