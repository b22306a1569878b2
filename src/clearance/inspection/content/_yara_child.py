"""Work that runs inside the sandbox for the YARA engine (see :mod:`.yara_engine`).

Each function has the sandbox signature ``f(args, progress) -> JSON`` and
streams per-item results through ``progress`` so that, if the engine dies on
one item, the parent keeps every result before it and knows which item killed it.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import pwd
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yara_x

Progress = Callable[[Any], None]

#: The external variables common YARA scanners (LOKI, THOR, yarGen) provide.
STANDARD_EXTERNALS = ("filename", "filepath", "extension", "filetype", "owner", "md5")


def _compiler() -> yara_x.Compiler:
    compiler = yara_x.Compiler()
    # An include could make the inspector read its own files: never allowed.
    compiler.enable_includes(False)
    for name in STANDARD_EXTERNALS:
        compiler.define_global(name, "")
    return compiler


def _read_text(path: str) -> str:
    return Path(path).read_bytes().decode("utf-8", "replace")


# --- parsing (plyara, the independent parser) ---------------------------------------------


def _new_parser() -> Any:
    import plyara

    class FastPlyara(plyara.Plyara):  # type: ignore[misc]
        """plyara lexing text, hex and regex strings as runs instead of a token a character.

        Same tokens, same errors: a run holds no quote, slash, backslash or line end,
        and the characters right after a backslash go through plyara's own logic.
        (PLY orders rules by line: these come before plyara's own in their states.)
        """

        def t_STRING_value(self, t: Any) -> Any:  # noqa: N802 (PLY names rules so)
            r'[^"\\\n]+|.'
            return _by_char(t, super().t_STRING_value)

        def t_REXSTRING_value(self, t: Any) -> Any:  # noqa: N802
            r"[\x20-\x2e\x30-\x5b\x5d-\x7f]+|[\x20-\x2e\x30-\x7f]"
            return _by_char(t, super().t_REXSTRING_value)

        @staticmethod
        def t_BYTESTRING_pair(t: Any) -> None:  # noqa: N802
            r"(?:[\t ]*~?[a-fA-F0-9?]{2}[\t ]*)+"

    parser = FastPlyara(store_raw_sections=True)
    # plyara's clear() rebuilds its lexer (tens of ms); a clone of a fresh one is free.
    parser.pristine_lexer = parser.lexer.clone()
    return parser


def _by_char(t: Any, handle: Callable[[Any], Any]) -> Any:
    """Feed a run to plyara's per-character rule while an escape is open (it is a no-op after)."""
    lexer = t.lexer
    if len(t.value) == 1 or lexer.escape or lexer.hex_escape:
        for position, char in enumerate(t.value):
            if position and not (lexer.escape or lexer.hex_escape):
                break
            t.value = char
            token = handle(t)
            if token is not None:
                return token
    return None


def _reset(parser: Any) -> None:
    """plyara's own clear() rebuilds its LALR tables (70 ms); reset only the state."""
    for attr in (
        "rules",
        "string_modifiers",
        "imports",
        "includes",
        "terms",
        "scopes",
        "tags",
        "comments",
        "_rule_comments",
        "_stringnames",
    ):
        getattr(parser, attr).clear()
    parser.current_rule.clear()
    parser._raw_input = None
    for attr in (
        "_meta_start",
        "_meta_end",
        "_strings_start",
        "_strings_end",
        "_condition_start",
        "_condition_end",
    ):
        setattr(parser, attr, None)
    parser.lexer = parser.pristine_lexer.clone()


def _plain(value: Any) -> Any:
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    return str(value)


def _rule_dict(rule: dict[str, Any]) -> dict[str, Any]:
    metadata = []
    for entry in rule.get("metadata", []):
        for key, value in entry.items():
            metadata.append([str(key), _plain(value)])
    condition = rule.get("raw_condition", "")
    condition = re.sub(r"^\s*condition\s*:", "", condition, count=1).strip()
    return {
        "name": rule["rule_name"],
        "start": int(rule.get("start_line", 0)),
        "end": int(rule.get("stop_line", 0)),
        "tags": [str(t) for t in rule.get("tags", [])],
        "scopes": [str(s) for s in rule.get("scopes", [])],
        "imports": sorted(str(i) for i in rule.get("imports", [])),
        "metadata": metadata,
        "strings": [
            {
                "id": s.get("name", ""),
                "kind": s.get("type", "text"),
                "value": str(s.get("value", "")),
                "modifiers": [str(m) for m in s.get("modifiers", [])],
            }
            for s in rule.get("strings", [])
        ],
        "terms": [str(t) for t in rule.get("condition_terms", [])],
        "condition": condition,
    }


def parse_files(args: dict[str, Any], progress: Progress) -> int:
    parser = _new_parser()
    for index, (uri, path) in enumerate(args["files"]):
        _reset(parser)
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                # The engine reads CR-only and CRLF line ends as line ends; so must the
                # analysis (line numbers stay the same: one line end for one line end).
                text = _read_text(path).replace("\r\n", "\n").replace("\r", "\n")
                rules = parser.parse_string(text)
            entry = {"i": index, "uri": uri, "rules": [_rule_dict(r) for r in rules], "error": ""}
        except Exception as exc:  # plyara raises many kinds; any of them means "cannot read"
            entry = {"i": index, "uri": uri, "rules": [], "error": f"{type(exc).__name__}: {exc}"}
            parser = _new_parser()
        progress(entry)
    return len(args["files"])


# --- the scanning set (the fallback when one compile of everything fails) -------------------


def build_set(args: dict[str, Any], progress: Progress) -> dict[str, str]:
    """Compile ``files`` ([namespace, uri, path]) into one set and serialize it to ``out``."""
    compiler = _compiler()
    namespaces: dict[str, str] = {}
    for index, (namespace, uri, path) in enumerate(args["files"]):
        compiler.new_namespace(namespace)
        compiler.add_source(_read_text(path), origin=uri)
        namespaces[namespace] = uri
        progress({"i": index})
    rules = compiler.build()
    with Path(args["out"]).open("wb") as out:
        rules.serialize_into(out)
    return namespaces


# --- scanning the corpus ----------------------------------------------------------------------


def _filetype(head: bytes) -> str:
    if head.startswith(b"MZ"):
        return "EXE"
    if head.startswith(b"\x7fELF"):
        return "ELF"
    if head[:4] in (
        b"\xfe\xed\xfa\xce",
        b"\xfe\xed\xfa\xcf",
        b"\xce\xfa\xed\xfe",
        b"\xcf\xfa\xed\xfe",
    ):
        return "MACHO"
    return ""


def _owner(st: os.stat_result, cache: dict[int, str]) -> str:
    if st.st_uid not in cache:
        try:
            cache[st.st_uid] = pwd.getpwuid(st.st_uid).pw_name
        except KeyError:
            cache[st.st_uid] = str(st.st_uid)
    return cache[st.st_uid]


def _printable(data: bytes) -> str:
    return "".join(chr(b) if 32 <= b < 127 else f"\\x{b:02x}" for b in data)


def scan_corpus(args: dict[str, Any], progress: Progress) -> int:
    """Scan ``files`` with the serialized set; one progress line per file (crash locating)."""
    with Path(args["compiled"]).open("rb") as fh:
        rules = yara_x.Rules.deserialize_from(fh)
    scanner = yara_x.Scanner(rules)
    scanner.set_timeout(int(args.get("timeout", 30)))
    # Dying before this is the set's fault (it cannot load), after it a corpus file's.
    progress({"ready": 1})
    want_md5 = bool(args.get("md5"))
    max_strings = int(args.get("max_strings", 3))
    owners: dict[int, str] = {}
    max_bytes = int(args.get("max_file_bytes", 64 * 2**20))
    for index, path in enumerate(args["files"]):
        entry: dict[str, Any] = {"i": index}
        try:
            # One open per file: the bytes give size, type and content at once.
            with open(path, "rb") as fh:
                st = os.fstat(fh.fileno())
                data = fh.read(max_bytes)
            name = os.path.basename(path)  # noqa: PTH119
            scanner.set_global("filename", name)
            scanner.set_global("filepath", path)
            scanner.set_global("extension", os.path.splitext(name)[1].lower())  # noqa: PTH122
            scanner.set_global("filetype", _filetype(data[:4]))
            scanner.set_global("owner", _owner(st, owners))
            if want_md5:
                scanner.set_global("md5", hashlib.md5(data, usedforsecurity=False).hexdigest())
            results = scanner.scan(data)
            entry["b"] = len(data)
            hits = []
            for rule in results.matching_rules:
                strings: list[list[Any]] = []
                for pattern in rule.patterns:
                    for match in pattern.matches[:1]:
                        if len(strings) < max_strings:
                            excerpt = data[match.offset : match.offset + min(match.length, 48)]
                            strings.append([pattern.identifier, match.offset, _printable(excerpt)])
                hits.append([rule.namespace, rule.identifier, strings])
            if hits:
                entry["m"] = hits
        except yara_x.TimeoutError:
            entry["t"] = 1
        except (OSError, yara_x.ScanError) as exc:
            entry["e"] = str(exc)[:200]
        progress(entry)
    return len(args["files"])


def scan_with_each(args: dict[str, Any], progress: Progress) -> int:
    """Scan one corpus file with each content file alone: which content kills the engine?"""
    target = args["target"]
    data = Path(target).read_bytes()
    for index, (uri, path) in enumerate(args["files"]):
        progress({"start": index})
        compiler = _compiler()
        with contextlib.suppress(yara_x.CompileError):
            compiler.add_source(_read_text(path), origin=uri)
        scanner = yara_x.Scanner(compiler.build())
        scanner.set_timeout(int(args.get("timeout", 30)))
        name = Path(target).name
        scanner.set_global("filename", name)
        scanner.set_global("filepath", target)
        scanner.set_global("extension", Path(name).suffix.lower())
        with contextlib.suppress(yara_x.TimeoutError, yara_x.ScanError):
            scanner.scan(data)
        progress({"i": index, "uri": uri})
    return len(args["files"])


# --- probing regular expressions with the real engine ----------------------------------------


def probe_regexes(args: dict[str, Any], progress: Progress) -> dict[str, list[str]]:
    """Which regex patterns match which probe samples entirely (and not the control text)?

    ``args``: {"regexes": [[key, source]], "samples": [[label, text]], "control": text}.
    Returns key -> labels of the samples it matches.
    """
    compiler = _compiler()
    keys: dict[str, str] = {}
    for index, (key, source) in enumerate(args["regexes"]):
        name = f"r{index}"
        with contextlib.suppress(yara_x.CompileError):
            compiler.add_source(f"rule {name} {{ strings: $a = {source} condition: $a }}")
            keys[name] = key
    rules = compiler.build()
    scanner = yara_x.Scanner(rules)
    scanner.set_timeout(30)
    control = {r.identifier for r in scanner.scan(args["control"].encode()).matching_rules}
    found: dict[str, list[str]] = {}
    for label, text in args["samples"]:
        data = text.encode()
        for rule in scanner.scan(data).matching_rules:
            if rule.identifier in control or rule.identifier not in keys:
                continue
            whole = any(m.length >= 0.8 * len(data) for p in rule.patterns for m in p.matches)
            if whole:
                found.setdefault(keys[rule.identifier], []).append(label)
    return found
