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
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yara_x

Progress = Callable[[Any], None]

#: The external variables common YARA scanners (LOKI, THOR, yarGen) provide.
STANDARD_EXTERNALS = ("filename", "filepath", "extension", "filetype", "owner", "md5")

_IMPORT_LINE = re.compile(r'^\s*import\s+"[^"]+"\s*$', re.MULTILINE)


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

    return plyara.Plyara(store_raw_sections=True)


def _reset(parser: Any) -> None:
    """plyara's own clear() rebuilds its LALR tables (70 ms); reset only the state."""
    from ply import lex  # type: ignore[import-untyped]

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
    parser.lexer = lex.lex(module=parser, debug=False)


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


# --- compiling, one file at a time, with its cost on a sample ------------------------------


def _diagnostics(items: list[dict[str, Any]], level: str) -> list[dict[str, Any]]:
    return [
        {
            "level": level,
            "code": str(d.get("code", "")),
            "message": str(d.get("title", "")),
            "line": int(d.get("line") or 0),
            "text": str(d.get("text", "")),
        }
        for d in items
    ]


def _scan_cost(rules: yara_x.Rules, sample: list[bytes], timeout: int) -> float:
    scanner = yara_x.Scanner(rules)
    scanner.set_timeout(timeout)
    # CPU time of this thread, not wall time: other processes on the machine must
    # not make honest rules look slow.
    started = time.thread_time()
    for data in sample:
        scanner.scan(data)
    return time.thread_time() - started


def _load_sample(paths: list[str]) -> list[bytes]:
    return [Path(p).read_bytes() for p in paths]


#: A rule can hide its cost behind a size gate ("filesize > 2MB and for all i in ..."):
#: the cost sample is small files, so such a file is also timed on a large synthetic one.
_SIZE_GATE = re.compile(r"filesize\s*>=?\s*(\d+)\s*(KB|MB)?|\(\s*\d+\s*\.\.\s*filesize", re.I)
_LARGE_MIN = 8 * 2**20
_LARGE_MAX = 64 * 2**20


def _large_size(text: str) -> int | None:
    """Size of the synthetic file that exercises the file's size-gated rules, if any."""
    sizes = []
    for m in _SIZE_GATE.finditer(text):
        if m.group(1) is None:
            sizes.append(_LARGE_MIN)
            continue
        unit = {"KB": 2**10, "MB": 2**20}.get((m.group(2) or "").upper(), 1)
        sizes.append(int(m.group(1)) * unit + 2**20)
    if not sizes:
        return None
    return min(max(max(sizes), _LARGE_MIN), _LARGE_MAX)


def _synthetic(size: int) -> bytes:
    """Deterministic filler: an executable header, text and pseudo-random bytes."""
    block = bytearray(b"MZ\x90\x00" + b"This program cannot be run in DOS mode.\r\n" * 4)
    state = 0x2545F491
    while len(block) < 65536:
        state = (state * 1103515245 + 12345) & 0x7FFFFFFF
        block.append(state >> 16 & 0xFF)
    return (bytes(block) * (size // len(block) + 1))[:size]


def _large_cost(rules: yara_x.Rules, text: str, timeout: int, empty: yara_x.Rules) -> float:
    size = _large_size(text)
    if size is None:
        return 0.0
    data = [_synthetic(size)]
    mib = size / 2**20
    baseline = _scan_cost(empty, data, timeout)
    return max(_scan_cost(rules, data, timeout) - baseline, 0.0) * 1000 / mib


def compile_files(args: dict[str, Any], progress: Progress) -> int:
    sample = _load_sample(args["sample"])
    # Per-scan setup dominates on a tiny sample; never divide by less than 256 KiB.
    sample_mib = max(sum(len(s) for s in sample) / 2**20, 0.25)
    timeout = int(args.get("timeout", 20))
    budget = float(args.get("budget_ms_per_mib", 0.0))
    empty = _compiler().build()
    baseline = min(_scan_cost(empty, sample, timeout) for _ in range(2))
    for index, (uri, path) in enumerate(args["files"]):
        progress({"start": index})
        text = _read_text(path)
        compiler = _compiler()
        started = time.perf_counter()
        with contextlib.suppress(yara_x.CompileError):
            compiler.add_source(text, origin=uri)
        errors = _diagnostics(compiler.errors(), "error")
        warnings = _diagnostics(compiler.warnings(), "warning")
        rules = compiler.build()
        compile_s = time.perf_counter() - started
        cost: float | None = None
        per_rule: dict[str, float] = {}
        if not errors and sample:
            try:
                cost = _rule_cost(rules, sample, timeout, baseline, sample_mib)
                if budget and cost > budget / 2:
                    cost = min(
                        cost,
                        *(
                            _rule_cost(rules, sample, timeout, baseline, sample_mib)
                            for _ in range(2)
                        ),
                    )
                cost = max(cost, _large_cost(rules, text, timeout, empty))
                if budget and cost > budget:
                    per_rule = _drill_down(
                        text, rule_spans(text), sample, timeout, baseline, sample_mib
                    )
            except yara_x.TimeoutError:
                cost = float("inf")
        progress(
            {
                "i": index,
                "uri": uri,
                "errors": errors,
                "warnings": warnings,
                "compile_s": compile_s,
                "cost": None if cost is None else (cost if cost != float("inf") else -1.0),
                "per_rule": per_rule,
            }
        )
    return len(args["files"])


def _rule_cost(
    rules: yara_x.Rules, sample: list[bytes], timeout: int, baseline: float, sample_mib: float
) -> float:
    return max(_scan_cost(rules, sample, timeout) - baseline, 0.0) * 1000 / sample_mib


_RULE_HEAD = re.compile(r"^\s*(?:(?:private|global)\s+)*rule\s+([A-Za-z_]\w*)", re.MULTILINE)


def rule_spans(text: str) -> list[list[Any]]:
    """[name, first line, last line] of each rule, to time rules one by one.

    Only locates text for timing (a rule that does not compile alone is skipped);
    the checks never use it -- they work on the parsed rules.
    """
    heads = [(m.group(1), text.count("\n", 0, m.start()) + 1) for m in _RULE_HEAD.finditer(text)]
    total = text.count("\n") + 1
    return [
        [name, start, (heads[i + 1][1] - 1) if i + 1 < len(heads) else total]
        for i, (name, start) in enumerate(heads)
    ]


def _drill_down(
    text: str,
    spans: list[list[Any]],
    sample: list[bytes],
    timeout: int,
    baseline: float,
    sample_mib: float,
) -> dict[str, float]:
    """Time each rule of an over-budget file alone (rules that need others are skipped)."""
    imports = "\n".join(_IMPORT_LINE.findall(text))
    lines = text.splitlines()
    costs: dict[str, float] = {}
    for name, start, end in spans:
        source = imports + "\n" + "\n".join(lines[int(start) - 1 : int(end)])
        compiler = _compiler()
        try:
            compiler.add_source(source)
            rules = compiler.build()
            costs[str(name)] = _rule_cost(rules, sample, timeout, baseline, sample_mib)
        except (yara_x.CompileError, yara_x.TimeoutError):
            continue
    return costs


def build_set(args: dict[str, Any], progress: Progress) -> dict[str, str]:
    """Compile every clean file into one set (a namespace per file) and serialize it."""
    compiler = _compiler()
    namespaces: dict[str, str] = {}
    for index, (uri, path) in enumerate(args["files"]):
        namespace = f"f{index}"
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
