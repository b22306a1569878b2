"""What a YARA condition says in its terms: comparisons with variables, bare identifiers, rule heads.

Read from the condition's token list (:attr:`~.model.ContentRule.condition_terms`)
and, for :func:`rule_heads`, from the raw text of a file as the engine reads it.
"""

from __future__ import annotations

import re

from clearance.inspection.content.model import ContentRule

_COMPARISON_OPS = frozenset(
    {
        "==",
        "!=",
        "contains",
        "icontains",
        "startswith",
        "istartswith",
        "endswith",
        "iendswith",
        "iequals",
        "matches",
    }
)


def _unquote(term: str) -> str | None:
    if len(term) >= 2 and term[0] == '"' and term[-1] == '"':
        body = term[1:-1]
        return re.sub(r"\\(.)", r"\1", body)
    if len(term) >= 2 and term[0] == "/" and term.rfind("/") > 0:
        return term
    return None


def external_comparisons(rule: ContentRule) -> list[tuple[str, str, str]]:
    """(variable, operator, literal) wherever the condition compares a variable to a literal.

    The variable is any bare identifier (standard externals and unknown ones alike).
    """
    out = []
    terms = rule.condition_terms
    for i in range(len(terms) - 2):
        left, op, right = terms[i], terms[i + 1], terms[i + 2]
        if op not in _COMPARISON_OPS:
            continue
        literal = _unquote(right)
        if literal is not None and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", left):
            out.append((left, op, literal))
        literal = _unquote(left)
        if literal is not None and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", right) and op == "==":
            out.append((right, op, literal))
    return out


_KEYWORDS_YARA = frozenset(
    [
        "all",
        "and",
        "any",
        "at",
        "base64",
        "base64wide",
        "condition",
        "contains",
        "defined",
        "endswith",
        "entrypoint",
        "false",
        "filesize",
        "for",
        "fullword",
        "global",
        "icontains",
        "iendswith",
        "iequals",
        "import",
        "in",
        "include",
        "istartswith",
        "matches",
        "meta",
        "nocase",
        "none",
        "not",
        "of",
        "or",
        "private",
        "rule",
        "startswith",
        "strings",
        "them",
        "true",
        "uint16",
        "uint32",
        "uint8",
        "uint16be",
        "uint32be",
        "uint8be",
        "int16",
        "int32",
        "int8",
        "int16be",
        "int32be",
        "int8be",
        "wide",
        "ascii",
        "xor",
        "with",
        "private",
    ]
)


def bare_identifiers(rule: ContentRule, known_rules: frozenset[str]) -> set[str]:
    """Identifiers in the condition that are not keywords, modules, rules, loop variables."""
    terms = rule.condition_terms
    loop_vars: set[str] = set()
    for i, term in enumerate(terms):
        if term in ("for", "with") and i + 2 < len(terms):
            j = i + 1
            while j < len(terms) and terms[j] not in ("in", ":", "of"):
                if re.fullmatch(r"[A-Za-z_]\w*", terms[j]) and terms[j] not in (
                    "any",
                    "all",
                    "none",
                ):
                    loop_vars.add(terms[j])
                j += 1
    out = set()
    for i, term in enumerate(terms):
        if not re.fullmatch(r"[A-Za-z_]\w*", term):
            continue
        if term in _KEYWORDS_YARA or term in known_rules or term in loop_vars:
            continue
        if i + 1 < len(terms) and terms[i + 1] == "(":
            continue  # a function call
        if i > 0 and (terms[i - 1] == "." or terms[i - 1].endswith(".")):
            continue  # a field of a module structure (pe.signatures[i].issuer)
        if term.split(".", 1)[0] in rule.imports:
            continue
        out.add(term)
    return out


_TOKENS = re.compile(
    r'/\*.*?(?:\*/|\Z)|//[^\n]*|"(?:\\.|[^"\\\n])*"?'
    r"|(?<![\w])(?:(?:private|global)\s+)*rule\s+([A-Za-z_]\w*)",
    re.DOTALL,
)


def rule_heads(text: str) -> list[tuple[str, int]]:
    """(name, line) of every rule declared in YARA text, outside comments and strings.

    A cross-check of the independent parser: a rule the engine compiles but the
    parser does not return would escape every check.
    """
    out: list[tuple[str, int]] = []
    line, pos = 1, 0
    for m in _TOKENS.finditer(text):
        if m.group(1):
            line += text.count("\n", pos, m.start())
            pos = m.start()
            out.append((m.group(1), line))
    return out
