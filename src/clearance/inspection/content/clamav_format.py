"""ClamAV signature databases, parsed independently of the engine for the analysis.

Every line of a database is one rule of the engine-neutral model
(:class:`~.model.ContentRule`), so the content checks apply unchanged:

* hash signatures: ``.hdb`` (``MD5:size:Name``), ``.hsb`` (SHA-1/SHA-256),
  ``.mdb``/``.msb`` (``size:hash:Name`` of a PE section); the digest is a
  text pattern ``$md5``/``$sha1``/``$sha256``/``$section_*``;
* body signatures ``.ndb`` (``Name:TargetType:Offset:HexSignature[:minFL[:maxFL]]``):
  one hex pattern, written in YARA's spaced hex notation so the shared
  analysis reads its byte runs (``*`` -> ``[-]``, ``{n-m}`` -> ``[n-m]``,
  alternatives kept as ``( .. | .. )``); the raw signature is metadata;
* logical signatures ``.ldb`` (``Name;TargetDescription;Logic;Sub0;Sub1...``):
  one pattern per sub-signature (hex with ``::iwfa`` modifiers, or PCRE as a
  regex pattern); the logic and the target description are the condition;
* container metadata ``.cdb``: the file-name regex is a regex pattern, the
  container type and sizes are the condition;
* allow lists ``.fp`` / ``.sfp`` (hashes of files never to report) and
  ``.ign2`` / ``.ign`` (names of signatures switched off): rules tagged
  ``allowlist``.

The target type (``.ndb`` field 2, ``Target:`` of an ``.ldb``) and the
container type become tags ``target:pe``, ``target:ole2``, ``container:CL_TYPE_ZIP``...
which the analysis reads as signs of code or of documents.

Lines the parser cannot read are collected in ``RuleFile.parse_error``
("line N: why"); the engine (clamscan) is the judge of validity, so a line
the engine accepts and this parser does not is itself a finding.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from clearance.inspection.content.model import HEX, REGEX, TEXT, ContentRule, RuleFile, RulePattern

#: Database files this engine reads, by suffix.
HASH_SUFFIXES = (".hdb", ".hsb", ".mdb", ".msb", ".fp", ".sfp")
DB_SUFFIXES = (*HASH_SUFFIXES, ".ndb", ".ldb", ".cdb", ".ign2", ".ign")
CONTAINER_SUFFIXES = (".cvd", ".cld")

#: ClamAV target types (.ndb field 2, .ldb ``Target:``).
TARGETS = {
    0: "any",
    1: "pe",
    2: "ole2",
    3: "html",
    4: "mail",
    5: "graphics",
    6: "elf",
    7: "ascii",
    8: "unused",
    9: "macho",
    10: "pdf",
    11: "flash",
    12: "java",
    13: "internal",
    14: "other",
}

_MODIFIERS = {"i": "nocase", "w": "wide", "f": "fullword", "a": "ascii"}
_HEXCHARS = frozenset("0123456789abcdefABCDEF")
_TOKEN = re.compile(
    r"[0-9A-Fa-f]{2}"
    r"|\?\?|[0-9A-Fa-f]\?|\?[0-9A-Fa-f]"
    r"|\*|\{[^}]*\}|\[[^\]]*\]"
    r"|!?\((?:[^()]|\([^()]*\))*\)"
    r"|."
)
_HASH_LENGTHS = {32: "md5", 40: "sha1", 64: "sha256"}


class _BadLineError(ValueError):
    pass


def suffix(name: str) -> str:
    lower = name.lower()
    return next((s for s in (*DB_SUFFIXES, *CONTAINER_SUFFIXES) if lower.endswith(s)), "")


def to_spaced_hex(sig: str) -> str:
    """ClamAV hex notation -> YARA-style spaced hex (for reading byte runs, not for matching)."""
    out: list[str] = []
    for m in _TOKEN.finditer(sig):
        tok = m.group(0)
        if (
            len(tok) == 2
            and (tok[0] in _HEXCHARS or tok[0] == "?")
            and (tok[1] in _HEXCHARS or tok[1] == "?")
        ):
            out.append(tok.upper())
        elif tok == "*":
            out.append("[-]")
        elif tok.startswith(("{", "[")):
            body = tok[1:-1]
            if body.startswith("-"):
                body = "0" + body
            out.append(f"[{body}]")
        elif tok.startswith("!("):
            out.append("??")
        elif tok.startswith("("):
            inner = tok[1:-1]
            if inner in ("B", "L"):
                out.append("[0]")
                continue
            branches = [to_spaced_hex(b) for b in inner.split("|")]
            out.append("( " + " | ".join(branches) + " )")
        else:
            raise _BadLineError(f"unexpected {tok!r} in hex signature")
    return " ".join(out)


def _check_hex(sig: str) -> None:
    if not sig:
        raise _BadLineError("empty hex signature")
    if not any(
        len(t) == 2 and t[0] in _HEXCHARS and t[1] in _HEXCHARS for t in _TOKEN.findall(sig)
    ):
        raise _BadLineError("hex signature without a single concrete byte")
    to_spaced_hex(sig)


def _hex_pattern(ident: str, sig: str, modifiers: tuple[str, ...] = ()) -> RulePattern:
    _check_hex(sig)
    return RulePattern(ident, HEX, "{ " + to_spaced_hex(sig) + " }", modifiers)


def _rule(
    uri: str,
    line: int,
    name: str,
    patterns: Sequence[RulePattern],
    condition: str,
    terms: Sequence[str],
    tags: Sequence[str],
    metadata: Sequence[tuple[str, object]] = (),
    identity: str = "",
) -> ContentRule:
    if not name:
        raise _BadLineError("empty signature name")
    return ContentRule(
        name=name,
        uri=uri,
        start_line=line,
        end_line=line,
        patterns=tuple(
            RulePattern(p.identifier, p.kind, p.value, p.modifiers, line) for p in patterns
        ),
        condition=condition,
        condition_terms=tuple(terms),
        metadata=tuple(metadata),
        tags=tuple(tags),
        engine="clamav",
        identity=identity,
    )


def _hash_line(uri: str, number: int, line: str, kind: str) -> ContentRule:
    parts = line.split(":")
    if len(parts) < 3:
        raise _BadLineError("a hash signature needs hash:size:name")
    if kind in (".mdb", ".msb"):
        size, digest, name = parts[0], parts[1], parts[2]
        prefix = "$section_"
    else:
        digest, size, name = parts[0], parts[1], parts[2]
        prefix = "$"
    algo = _HASH_LENGTHS.get(len(digest))
    if algo is None or not all(c in _HEXCHARS for c in digest):
        raise _BadLineError(f"{digest[:70]!r} is not an MD5, SHA-1 or SHA-256 digest")
    if kind in (".hdb", ".mdb", ".fp") and algo != "md5" and len(parts) < 4:
        raise _BadLineError(f"{kind} holds MD5 digests")
    if size != "*" and not size.isdigit():
        raise _BadLineError(f"size {size[:20]!r} is not a number or *")
    tags = ["allowlist"] if kind in (".fp", ".sfp") else []
    if kind in (".mdb", ".msb"):
        tags.append("target:pe")
    return _rule(
        uri,
        number,
        name,
        [RulePattern(f"{prefix}{algo}", TEXT, digest.lower())],
        f"{algo}({'pe section' if prefix != '$' else 'file'}) == {digest.lower()} and size == {size}",
        [f"{algo}", "==", f'"{digest.lower()}"'],
        tags,
        [("size", size)],
        f"{kind[1:]}:{digest.lower()}:{size}",
    )


def _target_tags(value: str) -> list[str]:
    try:
        number = int(value)
    except ValueError as exc:
        raise _BadLineError(f"target type {value!r} is not a number") from exc
    if number not in TARGETS:
        raise _BadLineError(f"unknown target type {number}")
    return [f"target:{TARGETS[number]}"]


def _ndb_line(uri: str, number: int, line: str) -> ContentRule:
    parts = line.split(":")
    if len(parts) < 4:
        raise _BadLineError("a body signature needs name:target:offset:hex")
    name, target, offset, sig = parts[0], parts[1], parts[2], parts[3]
    tags = _target_tags(target)
    pattern = _hex_pattern("$sig", sig)
    return _rule(
        uri,
        number,
        name,
        [pattern],
        f"target {tags[0][7:]} at offset {offset}",
        ["target", tags[0][7:], "offset", offset],
        tags,
        [("offset", offset), ("signature", sig[:2000])],
        f"ndb:{target}:{offset}:{sig.lower()}",
    )


def _split_modifiers(sub: str) -> tuple[str, tuple[str, ...]]:
    if "::" in sub:
        body, mods = sub.rsplit("::", 1)
        if mods and all(c in _MODIFIERS for c in mods):
            return body, tuple(_MODIFIERS[c] for c in mods)
    return sub, ()


def _ldb_subsig(index: int, sub: str) -> RulePattern:
    ident = f"$subsig{index}"
    # PCRE: [Offset:]Trigger/regex/[flags]
    slash = sub.find("/")
    if (
        slash > 0
        and sub.rfind("/") > slash
        and re.fullmatch(r"[0-9A-Za-z:*,+\-=<>()&|]*", sub[:slash])
    ):
        last = sub.rfind("/")
        flags = sub[last + 1 :]
        return RulePattern(
            ident, REGEX, "/" + sub[slash + 1 : last] + "/" + flags, (f"trigger:{sub[:slash]}",)
        )
    if sub.startswith("VI:"):
        # PE version information (key, NULs, value in UTF-16LE): read by org_software.
        return _hex_pattern(ident, sub[3:], ("versioninfo",))
    if sub.startswith("${") or "#" in sub[:12] or re.match(r"^\d+\((?:[<>=]|#)", sub):
        # macro, fuzzy image hash or byte-compare sub-signature: no bytes to read
        return RulePattern(ident, TEXT, "", ("special",))
    body, mods = _split_modifiers(sub)
    if ":" in body:
        offset, _, body = body.rpartition(":")
        mods = (*mods, f"offset:{offset}")
    return _hex_pattern(ident, body, mods)


def _ldb_line(uri: str, number: int, line: str) -> ContentRule:
    parts = line.split(";")
    if len(parts) < 4:
        raise _BadLineError("a logical signature needs name;target description;logic;subsig...")
    name, tdb, logic, subs = parts[0], parts[1], parts[2], parts[3:]
    if not re.fullmatch(r"[0-9&|()=<>,\s]+", logic):
        raise _BadLineError(f"logical expression {logic[:60]!r} is malformed")
    used = {int(n) for n in re.findall(r"\d+", re.sub(r"[=<>]\d+(,\d+)?", "", logic))}
    if used and max(used) >= len(subs):
        raise _BadLineError(f"logical expression uses sub-signature {max(used)} of {len(subs)}")
    tags: list[str] = []
    terms: list[str] = []
    for item in tdb.split(","):
        key, _, value = item.partition(":")
        if key == "Target":
            tags += _target_tags(value)
        elif key == "Container":
            tags.append(f"container:{value}")
        elif key in ("Intermediates",):
            tags += [f"container:{v}" for v in value.split(">")]
        terms += [key, value]
    patterns = [_ldb_subsig(i, s) for i, s in enumerate(subs)]
    return _rule(
        uri,
        number,
        name,
        patterns,
        f"{logic} [{tdb}]",
        [*terms, *re.findall(r"\d+|[&|()=<>,]", logic)],
        tags or ["target:any"],
        [("logic", logic), ("target_description", tdb)],
    )


def _cdb_line(uri: str, number: int, line: str) -> ContentRule:
    parts = line.split(":")
    if len(parts) < 10:
        raise _BadLineError("a container signature needs 10 fields")
    name, ctype, csize, fname = parts[0], parts[1], parts[2], parts[3]
    if ctype != "*" and not ctype.startswith("CL_TYPE_"):
        raise _BadLineError(f"container type {ctype!r} is not CL_TYPE_*")
    if fname not in ("", "*"):
        try:
            re.compile(fname)
        except re.error as exc:
            raise _BadLineError(f"file name regex {fname[:60]!r}: {exc}") from exc
    patterns = [] if fname in ("", "*") else [RulePattern("$filename", REGEX, f"/{fname}/")]
    return _rule(
        uri,
        number,
        name,
        patterns,
        f"container {ctype} size {csize}, member name ~ {fname}, sizes {parts[4]}/{parts[5]}",
        ["container", ctype, "filename", "matches", f"/{fname}/"],
        [f"container:{ctype}"] if ctype != "*" else ["container:any"],
        [("container", ctype), ("member_name", fname)],
        "cdb:" + ":".join(parts[1:10]),
    )


def _ign_line(uri: str, number: int, line: str, kind: str) -> ContentRule:
    # .ign2: "Name" or "Name:md5 of the signature"; .ign (old): "database:line:Name"
    parts = line.split(":")
    target = parts[2] if kind == ".ign" and len(parts) >= 3 else parts[0]
    if not target.strip():
        raise _BadLineError("empty signature name")
    return _rule(
        uri,
        number,
        f"ignore:{target}",
        [RulePattern("$ignored", TEXT, target)],
        f"ignore signature {target}",
        ["ignore", target],
        ["allowlist", "ignore"],
        [("ignores", target)],
    )


def parse_database(uri: str, path: Path, text: str | None = None) -> RuleFile:
    """Parse one loose database file (its type by suffix)."""
    raw = text if text is not None else path.read_bytes().decode("utf-8", "replace")
    lines = tuple(raw.split("\n"))
    kind = suffix(uri) or suffix(path.name)
    rules: list[ContentRule] = []
    bad: list[str] = []
    for number, full in enumerate(lines, start=1):
        line = full.rstrip("\r")
        if not line.strip() or line.startswith("#"):
            continue
        try:
            if kind in HASH_SUFFIXES:
                rules.append(_hash_line(uri, number, line, kind))
            elif kind == ".ndb":
                rules.append(_ndb_line(uri, number, line))
            elif kind == ".ldb":
                rules.append(_ldb_line(uri, number, line))
            elif kind == ".cdb":
                rules.append(_cdb_line(uri, number, line))
            elif kind in (".ign2", ".ign"):
                rules.append(_ign_line(uri, number, line, kind))
            else:
                bad.append(f"{uri}: not a ClamAV database type this inspector reads")
                break
        except _BadLineError as exc:
            bad.append(f"line {number}: {exc}")
    error = "; ".join(bad[:20]) + (f"; ... {len(bad) - 20} more" if len(bad) > 20 else "")
    return RuleFile(uri, path, "clamav", raw, tuple(rules), error, lines)
