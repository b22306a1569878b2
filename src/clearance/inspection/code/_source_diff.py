"""Source review aids: what changed between two source trees, and which changes matter.

A human inspector should read twenty lines, not twenty thousand.  So the two
trees are diffed file by file, every added line is matched against patterns
for the behaviour an inspector cares about (network, processes, file
collection, cryptography, dynamic code, privilege, persistence, embedded keys
and high-entropy blobs), and Python files go through bandit, of whose
results only those the previous release did not have are kept.
"""

from __future__ import annotations

import difflib
import io
import json
import math
import re
import subprocess
import sys
import tokenize
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from clearance.inspection.code._host_scan import Endpoint, find_endpoints

MAX_FILE_BYTES = 2 << 20

#: Call-out category -> (capability category it corroborates, pattern over one source line).
PATTERNS: dict[str, tuple[str | None, re.Pattern[str]]] = {
    "network": (
        "network",
        re.compile(
            r"\b(?:socket|connect|sendto|sendall|send|recv|getaddrinfo|gethostbyname|inet_pton|"
            r"inet_addr|curl_easy_\w+|urllib|urlopen|requests\.(?:get|post|put)|http\.client|"
            r"httpx|aiohttp|ftplib|smtplib|WSAStartup|InternetOpen\w*|WinHttp\w*|"
            r"URLDownloadToFile\w*)\b"
        ),
    ),
    "process": (
        "process",
        re.compile(
            r"\b(?:subprocess\.\w+|os\.system|os\.popen|os\.exec\w*|os\.spawn\w*|popen|Popen|"
            r"exec[lv]p?e?|fork|CreateProcess\w*|WinExec|"
            r"ShellExecute\w*|system)\s*\("
        ),
    ),
    "file-collection": (
        "file-collection",
        re.compile(
            r"(?:os\.walk|glob\.|scandir|listdir|opendir|readdir|nftw|FindFirstFile\w*|"
            r"expanduser|[\"'/\\]Documents\b|[\"'/\\]Desktop\b|\.docx?\b|\.xlsx?\b|\.pdf\b|"
            r"\.pst\b|\.odt\b|\.kdbx\b)"
        ),
    ),
    "cryptography": (
        None,
        re.compile(
            r"\b(?:AES\w*|RSA\w*|EVP_\w+|Cipher|Fernet|hashlib|hmac|cryptography|"
            r"CryptEncrypt|BCrypt\w+|ChaCha20\w*)\b"
        ),
    ),
    "dynamic-code": (
        "code-loading",
        re.compile(
            r"\b(?:eval|exec|compile|__import__|importlib|dlopen|dlsym|LoadLibrary\w*|"
            r"GetProcAddress|ctypes|marshal\.loads|pickle\.loads|mprotect|VirtualAlloc\w*)\b"
        ),
    ),
    "privilege": (
        "privilege",
        re.compile(r"\b(?:setuid|seteuid|setgid|setresuid|sudo|AdjustTokenPrivileges|capset)\b"),
    ),
    "persistence": (
        "persistence",
        re.compile(
            r"(?:crontab|systemctl\s+enable|/etc/init\.d|/etc/systemd|\.bashrc|rc\.local|"
            r"CurrentVersion\\\\Run|schtasks|autostart)"
        ),
    ),
    "embedded-key": (
        None,
        re.compile(
            r"-----BEGIN [A-Z ]*PRIVATE KEY-----|\bAKIA[0-9A-Z]{16}\b|\bghp_[A-Za-z0-9]{36}\b"
        ),
    ),
}
_BLOB_ENTROPY = 7.5
_BLOB = re.compile(r"[A-Za-z0-9+/=_-]{40,}")
_COMMENT_LINE = re.compile(r"^\s*(?:#|//|/\*|\*|--)")
_DOC_SUFFIXES = frozenset({".md", ".rst", ".txt", ".adoc", ".html", ".1", ".texi"})
_DOC_NAMES = frozenset({"license", "copying", "changelog", "authors", "news", "readme"})
_CONFIG_SUFFIXES = frozenset(
    {".json", ".yaml", ".yml", ".toml", ".ini", ".cfg", ".conf", ".xml", ".plist", ".env"}
)
_C_LITERAL = re.compile(r'"(?:[^"\\\n]|\\.)*"|\'(?:[^\'\\\n]|\\.)*\'')


def entropy(text: str) -> float:
    if not text:
        return 0.0
    counts = Counter(text)
    return -sum(c / len(text) * math.log2(c / len(text)) for c in counts.values())


@dataclass(frozen=True)
class Callout:
    """One added source line an inspector should read."""

    path: str
    line: int
    category: str
    text: str

    def to_dict(self) -> dict[str, object]:
        return {"file": self.path, "line": self.line, "category": self.category, "text": self.text}


@dataclass(frozen=True)
class FileChange:
    path: str
    status: str  # "added", "removed", "modified"
    added_lines: tuple[int, ...]
    removed_count: int
    new_text: tuple[str, ...]
    #: For a non-text file: (size in bytes, entropy in bits per byte).
    blob: tuple[int, float] | None = None


@dataclass(frozen=True)
class BanditIssue:
    path: str
    line: int
    test_id: str
    test_name: str
    severity: str
    confidence: str
    text: str
    code: str


@dataclass
class SourceReview:
    """The review of one source artifact against its predecessor (if any)."""

    artifact: str
    previous: str | None
    changes: list[FileChange] = field(default_factory=list)
    callouts: list[Callout] = field(default_factory=list)
    bandit_new: list[BanditIssue] = field(default_factory=list)
    bandit_error: str | None = None
    files_total: int = 0


def read_text(path: Path) -> str | None:
    """The file as text, or None for binary or oversized files."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    if len(data) > MAX_FILE_BYTES or b"\0" in data[:8192]:
        return None
    return data.decode("utf-8", errors="replace")


def _files(root: Path | None) -> dict[str, Path]:
    if root is None:
        return {}
    return {p.relative_to(root).as_posix(): p for p in sorted(root.rglob("*")) if p.is_file()}


def diff_trees(old: Path | None, new: Path) -> tuple[list[FileChange], int]:
    """Per-file changes from ``old`` to ``new`` and the number of files in ``new``."""
    old_files, new_files = _files(old), _files(new)
    changes: list[FileChange] = []
    for rel in sorted(set(old_files) | set(new_files)):
        if rel not in new_files:
            old_text = read_text(old_files[rel]) or ""
            changes.append(FileChange(rel, "removed", (), len(old_text.splitlines()), ()))
            continue
        new_text = read_text(new_files[rel])
        if rel in old_files and old_files[rel].read_bytes() == new_files[rel].read_bytes():
            continue
        if new_text is None:
            data = new_files[rel].read_bytes()
            status = "added" if rel not in old_files else "modified"
            changes.append(FileChange(rel, status, (), 0, (), (len(data), _byte_entropy(data))))
            continue
        new_lines = tuple((new_text or "").splitlines())
        if rel not in old_files:
            changes.append(
                FileChange(rel, "added", tuple(range(1, len(new_lines) + 1)), 0, new_lines)
            )
            continue
        old_lines = (read_text(old_files[rel]) or "").splitlines()
        matcher = difflib.SequenceMatcher(None, old_lines, list(new_lines), autojunk=False)
        added: list[int] = []
        removed = 0
        for tag, i1, i2, j1, j2 in matcher.get_opcodes():
            if tag in ("replace", "insert"):
                added.extend(range(j1 + 1, j2 + 1))
            if tag in ("replace", "delete"):
                removed += i2 - i1
        changes.append(FileChange(rel, "modified", tuple(added), removed, new_lines))
    return changes, len(new_files)


def _byte_entropy(data: bytes) -> float:
    if not data:
        return 0.0
    counts = Counter(data)
    return -sum(c / len(data) * math.log2(c / len(data)) for c in counts.values())


def callouts_for(changes: list[FileChange]) -> list[Callout]:
    """Added lines matching a pattern that matters, long high-entropy literals, dense blobs."""
    out: list[Callout] = []
    for change in changes:
        if change.blob is not None:
            size, bits = change.blob
            if bits >= _BLOB_ENTROPY and size >= 256:
                # Compressed or encrypted bytes in a source tree cannot be reviewed as source.
                text = f"{change.status} non-text file, {size} bytes, {bits:.2f} bits/byte"
                out.append(Callout(change.path, 0, "high-entropy-blob", text))
            continue
        if is_documentation(change.path):
            continue
        for number in change.added_lines:
            text = change.new_text[number - 1]
            if _COMMENT_LINE.match(text):
                continue
            snippet = text.strip()[:200]
            for category, (_capability, pattern) in PATTERNS.items():
                if pattern.search(text):
                    out.append(Callout(change.path, number, category, snippet))
            for blob in _BLOB.finditer(text):
                if entropy(blob.group()) >= 4.5:
                    out.append(Callout(change.path, number, "high-entropy-blob", snippet))
                    break
    return out


def capability_of(category: str) -> str | None:
    entry = PATTERNS.get(category)
    return entry[0] if entry else None


def is_documentation(rel: str) -> bool:
    name = rel.rsplit("/", 1)[-1].lower()
    stem = name.split(".", 1)[0]
    return Path(name).suffix in _DOC_SUFFIXES or stem in _DOC_NAMES


def _python_literals(text: str) -> Iterator[tuple[int, str]]:
    try:
        for token in tokenize.generate_tokens(io.StringIO(text).readline):
            if token.type == tokenize.STRING:
                for offset, line in enumerate(token.string.splitlines()):
                    yield token.start[0] + offset, line
    except (tokenize.TokenError, IndentationError, SyntaxError):
        yield from _c_literals(text)


def _c_literals(text: str) -> Iterator[tuple[int, str]]:
    for number, line in enumerate(text.splitlines(), start=1):
        for literal in _C_LITERAL.finditer(line):
            yield number, literal.group()[1:-1]


def source_endpoints(root: Path) -> list[tuple[Endpoint, str, int, str]]:
    """Endpoints in a source tree as (endpoint, file, line, line text).

    Code files contribute their string literals only (an attribute access such
    as ``self.example.com`` is not an endpoint, a quoted host is); configuration
    files every line; documentation nothing.
    """
    out: list[tuple[Endpoint, str, int, str]] = []
    for rel, path in _files(root).items():
        if is_documentation(rel):
            continue
        text = read_text(path)
        if text is None:
            continue
        lines = text.splitlines()
        suffix = Path(rel).suffix.lower()
        if suffix in _CONFIG_SUFFIXES:
            pieces: Iterator[tuple[int, str]] = iter(enumerate(lines, start=1))
        elif suffix in (".py", ".pyw"):
            pieces = _python_literals(text)
        else:
            pieces = _c_literals(text)
        for number, piece in pieces:
            for endpoint, _index in find_endpoints(piece):
                line_text = lines[number - 1].strip() if 0 < number <= len(lines) else piece
                out.append((endpoint, rel, number, line_text[:200]))
    return out


def run_bandit(root: Path) -> tuple[list[BanditIssue], str | None]:
    """bandit over every Python file under ``root``; (issues, error message or None)."""
    if not any(root.rglob("*.py")):
        return [], None
    run = subprocess.run(
        [sys.executable, "-m", "bandit", "-q", "-f", "json", "-r", str(root)],
        capture_output=True,
        timeout=600,
        check=False,
    )
    try:
        data = json.loads(run.stdout)
    except ValueError:
        return [], f"bandit failed: {run.stderr.decode(errors='replace').strip()[:300]}"
    issues: list[BanditIssue] = []
    for item in data.get("results", []):
        path = Path(item["filename"])
        rel = path.relative_to(root).as_posix() if path.is_absolute() else path.as_posix()
        rel = rel.removeprefix(root.as_posix().lstrip("/") + "/")
        line = int(item.get("line_number", 0))
        text = read_text(root / rel) or ""
        lines = text.splitlines()
        code = lines[line - 1].strip() if 0 < line <= len(lines) else ""
        issues.append(
            BanditIssue(
                path=rel,
                line=line,
                test_id=str(item.get("test_id", "")),
                test_name=str(item.get("test_name", "")),
                severity=str(item.get("issue_severity", "")).lower(),
                confidence=str(item.get("issue_confidence", "")).lower(),
                text=str(item.get("issue_text", "")),
                code=code,
            )
        )
    return sorted(issues, key=lambda i: (i.path, i.line, i.test_id)), None


def review(
    artifact: str, new_root: Path, previous: str | None, old_root: Path | None
) -> SourceReview:
    """Diff, call-outs and new bandit issues of one source tree against its predecessor."""
    changes, total = diff_trees(old_root, new_root)
    result = SourceReview(artifact, previous, changes, callouts_for(changes), files_total=total)
    new_issues, error = run_bandit(new_root)
    old_issues: list[BanditIssue] = []
    if old_root is not None and error is None:
        old_issues, error = run_bandit(old_root)
    seen = {(i.path, i.test_id, i.code) for i in old_issues}
    result.bandit_new = [i for i in new_issues if (i.path, i.test_id, i.code) not in seen]
    result.bandit_error = error
    return result
