"""flare-capa over ELF and PE binaries, with rules loaded once per process.

Loading the ~1,400 rules takes about 10 s (0.5 s from capa's own rule cache)
and analysing a binary several seconds, so the engine is shared per rules
directory and every result is cached as JSON under
``cache_dir/capa/<binary sha256>-<rules fingerprint>.json``.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clearance.inspection.code.errors import AnalysisUnavailable

_CACHE_VERSION = 1
_NOISY_LOGGERS = (
    "vivisect",
    "vivisect.base",
    "vivisect.impemu",
    "vivisect.analysis",
    "vtrace",
    "envi",
    "envi.codeflow",
    "Elf",
    "PE",
    "capa",
)


def default_rules_dir() -> Path:
    """``$CLEARANCE_CAPA_RULES``, else the project's shared rule set beside the repository."""
    configured = os.environ.get("CLEARANCE_CAPA_RULES")
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parents[4].parent / "shared" / "capa-rules"


@dataclass(frozen=True)
class CapabilityMatch:
    """One capa rule that matched, with the evidence a finding needs."""

    rule: str
    namespace: str
    attack: tuple[str, ...]
    mbc: tuple[str, ...]
    addresses: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "namespace": self.namespace,
            "attack": list(self.attack),
            "mbc": list(self.mbc),
            "addresses": list(self.addresses),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CapabilityMatch:
        return cls(
            rule=str(data["rule"]),
            namespace=str(data["namespace"]),
            attack=tuple(str(x) for x in data["attack"]),
            mbc=tuple(str(x) for x in data["mbc"]),
            addresses=tuple(str(x) for x in data["addresses"]),
        )


@dataclass(frozen=True)
class CapaReport:
    """capa's view of one binary.  ``error`` says why it could not be analysed, if so."""

    sha256: str
    capabilities: tuple[CapabilityMatch, ...]
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": _CACHE_VERSION,
            "sha256": self.sha256,
            "capabilities": [c.to_dict() for c in self.capabilities],
            "error": self.error,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CapaReport:
        return cls(
            sha256=str(data["sha256"]),
            capabilities=tuple(CapabilityMatch.from_dict(c) for c in data["capabilities"]),
            error=data.get("error"),
        )

    def rule_names(self) -> frozenset[str]:
        return frozenset(c.rule for c in self.capabilities)


@contextlib.contextmanager
def _quiet_disassemblers() -> Iterator[None]:
    """vivisect logs tracebacks for every odd PLT entry; keep stderr for our own messages."""
    saved = {name: logging.getLogger(name).level for name in _NOISY_LOGGERS}
    for name in _NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


def _address(address: Any) -> str:
    try:
        return hex(int(address))
    except (TypeError, ValueError):
        return "file"


def _as_tuple(value: Any) -> tuple[str, ...]:
    if not value:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(str(v) for v in value)


class CapaEngine:
    """One loaded capa rule set.  Use :func:`capa_engine` to share it within a process."""

    def __init__(self, rules_dir: Path, rule_cache_dir: Path | None = None) -> None:
        if not rules_dir.is_dir():
            raise AnalysisUnavailable(
                f"capa rules directory {rules_dir} is missing (set CLEARANCE_CAPA_RULES)"
            )
        import capa.rules

        self.rules_dir = rules_dir
        digest = hashlib.sha256()
        for path in sorted(rules_dir.rglob("*.yml")):
            digest.update(str(path.relative_to(rules_dir)).encode() + b"\0")
            digest.update(path.read_bytes())
        self.fingerprint = digest.hexdigest()[:16]
        kwargs: dict[str, Any] = {}
        if rule_cache_dir is not None:
            rule_cache_dir.mkdir(parents=True, exist_ok=True)
            kwargs["cache_dir"] = rule_cache_dir
        with _quiet_disassemblers():
            self.rules = capa.rules.get_rules([rules_dir], **kwargs)

    def analyse(
        self,
        path: Path,
        sha256: str,
        cache_dir: Path | None = None,
        *,
        isolate_over_bytes: int | None = None,
        wall_seconds: float = 1800.0,
    ) -> CapaReport:
        """capa's capabilities of the binary at ``path``, from the cache when it has them.

        Files larger than ``isolate_over_bytes`` are analysed in a limited child process
        (``clearance.inspection.sandbox``), so a binary that makes the disassembler run away
        costs a timeout, not the inspector.  Failed analyses are not cached.
        """
        cache_file = None
        if cache_dir is not None:
            cache_file = cache_dir / "capa" / f"{sha256}-{self.fingerprint}.json"
            if cache_file.is_file():
                try:
                    return CapaReport.from_dict(json.loads(cache_file.read_text()))
                except (ValueError, KeyError, TypeError):
                    pass  # a damaged cache entry is recomputed
        if isolate_over_bytes is not None and path.stat().st_size > isolate_over_bytes:
            report = self._analyse_isolated(path, sha256, wall_seconds)
        else:
            report = self._analyse(path, sha256)
        if cache_file is not None and not (report.error or "").startswith("capa failed"):
            cache_file.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache_file.with_suffix(".tmp")
            tmp.write_text(json.dumps(report.to_dict(), sort_keys=True))
            tmp.replace(cache_file)
        return report

    def _analyse_isolated(self, path: Path, sha256: str, wall_seconds: float) -> CapaReport:
        from clearance.inspection.sandbox import Limits, run_sandboxed

        limits = Limits(
            cpu_seconds=max(1, int(wall_seconds * 2)),
            address_space_bytes=8 * 2**30,
            wall_seconds=wall_seconds,
            output_bytes=64 * 2**20,
        )
        args = {"rules": str(self.rules_dir), "path": str(path), "sha256": sha256}
        outcome = run_sandboxed(analyse_in_child, args, limits)
        if outcome.ok and isinstance(outcome.value, dict):
            return CapaReport.from_dict(outcome.value)
        detail = outcome.detail or outcome.status
        return CapaReport(sha256, (), f"capa failed: {outcome.status} ({detail})")

    def _analyse(self, path: Path, sha256: str) -> CapaReport:
        import capa.capabilities.common
        import capa.loader
        from capa.exceptions import UnsupportedArchError, UnsupportedFormatError, UnsupportedOSError
        from capa.features.common import FORMAT_AUTO, OS_AUTO

        with _quiet_disassemblers():
            try:
                extractor = capa.loader.get_extractor(
                    path, FORMAT_AUTO, OS_AUTO, "vivisect", [], disable_progress=True
                )
                found = capa.capabilities.common.find_capabilities(
                    self.rules, extractor, disable_progress=True
                )
            except (UnsupportedFormatError, UnsupportedArchError, UnsupportedOSError) as exc:
                kind = type(exc).__name__.removeprefix("Unsupported").removesuffix("Error")
                return CapaReport(sha256, (), f"capa does not support this file ({kind.lower()})")
            except Exception as exc:
                return CapaReport(sha256, (), f"capa failed: {type(exc).__name__}: {exc}")
        matches: list[CapabilityMatch] = []
        for name, hits in found.matches.items():
            rule = self.rules.rules[name]
            meta = rule.meta
            if rule.is_subscope_rule() or meta.get("lib") or name.startswith("internal "):
                continue
            namespace = str(meta.get("namespace", ""))
            if namespace.startswith("internal"):
                continue
            matches.append(
                CapabilityMatch(
                    rule=name,
                    namespace=namespace,
                    attack=_as_tuple(meta.get("att&ck")),
                    mbc=_as_tuple(meta.get("mbc")),
                    addresses=tuple(sorted({_address(a) for a, _ in hits}))[:20],
                )
            )
        matches.sort(key=lambda m: (m.namespace, m.rule))
        return CapaReport(sha256, tuple(matches))


@functools.lru_cache(maxsize=4)
def capa_engine(rules_dir: Path) -> CapaEngine:
    """The process-wide engine for ``rules_dir`` (rules are loaded on first use only).

    capa keeps a compiled copy of the rules in its own cache directory
    (``$XDG_CACHE_HOME/capa``), which brings a load from ~10 s to ~0.5 s.
    """
    return CapaEngine(rules_dir)


def analyse_in_child(args: dict[str, str], progress: Any = None) -> dict[str, Any]:
    """Sandbox entry point: analyse one binary in a fresh process (rules from capa's cache)."""
    engine = capa_engine(Path(args["rules"]))
    return engine._analyse(Path(args["path"]), args["sha256"]).to_dict()
