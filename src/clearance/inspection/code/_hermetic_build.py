"""Hermetic rebuild of one binary from its source tree.

Each rebuild runs in a fresh directory, inside new network and mount
namespaces (``unshare --net --mount``): the network namespace has only a
downed loopback, so nothing can be fetched; the mount namespace binds the
fresh directory over the recipe's fixed build path, so every rebuild (and
the vendor's own build) sees the same absolute paths while concurrent
rebuilds never share a directory.  The environment is rebuilt from nothing:
fixed ``SOURCE_DATE_EPOCH``, ``TZ=UTC``, ``LC_ALL=C.UTF-8``, ``umask 022``,
``PYTHONHASHSEED=0``, offline pip, plus what the recipe declares.  Wall time,
CPU time, file size and the size of the whole tree are bounded.
"""

from __future__ import annotations

import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from clearance.inspection.code.errors import IsolationUnavailable, RecipeError
from clearance.inspection.code.recipe import DEFAULT_SOURCE_DATE_EPOCH, BuildRecipe

OK = "ok"
FAILED = "failed"
TIMEOUT = "timeout"
OUTPUT_LIMIT = "output-limit"
NO_OUTPUT = "no-output"

_LOG_TAIL = 4000
_UNSHARE = ("unshare", "--net", "--mount", "--propagation", "private", "--fork")
# Runs inside the namespaces: bind the fresh directory over the fixed path; then every other
# mount of this private namespace becomes read-only and the build runs with no capabilities at
# all (empty bounding set, no new privileges), so it can neither write outside its tree nor
# remount anything writable again.  Works as real root and inside a user namespace alike.
_ENTER = (
    'mount --bind "$1" "$2" || exit 1; '
    "awk '{print $5}' /proc/self/mountinfo | while read -r m; do "
    'case "$m" in "$2"|/proc|/proc/*|/sys|/sys/*|/dev|/dev/*) continue;; esac; '
    'mount -o remount,bind,ro "$m" 2>/dev/null; done; '
    'cd "$3" && shift 3 && exec setpriv --bounding-set=-all --inh-caps=-all --no-new-privs -- "$@"'
)


@dataclass(frozen=True)
class RebuildOutcome:
    """What one rebuild produced.  ``output`` is the rebuilt file when ``status == "ok"``."""

    status: str
    returncode: int | None
    log_tail: str
    output: Path | None
    isolation: str
    #: Measured, so never put it in deterministic output.
    wall_seconds: float

    @property
    def ok(self) -> bool:
        return self.status == OK


def isolation_command() -> tuple[str, ...]:
    """The ``unshare`` prefix that works here; raises :class:`IsolationUnavailable` otherwise."""
    if shutil.which("unshare") is None:
        raise IsolationUnavailable(
            "rebuild: 'unshare' (util-linux) is not installed; cannot isolate the build"
        )
    for prefix in (_UNSHARE, (*_UNSHARE, "--map-root-user")):
        probe = subprocess.run(
            [*prefix, "/bin/sh", "-c", "mount -t tmpfs none /mnt 2>/dev/null || true; exit 0"],
            capture_output=True,
            timeout=30,
            check=False,
        )
        if probe.returncode == 0:
            return prefix
    raise IsolationUnavailable(
        "rebuild: cannot create network and mount namespaces here (needs root or user "
        f"namespaces): {probe.stderr.decode(errors='replace').strip()}"
    )


def sandbox_env(recipe: BuildRecipe, root: PurePosixPath) -> dict[str, str]:
    """The whole environment of a rebuild: nothing is inherited from the inspector."""
    tool_dir = str(Path(sys.executable).parent)
    env = {
        "PATH": f"{tool_dir}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(root / "home"),
        "TMPDIR": str(root / "tmp"),
        "SOURCE_DATE_EPOCH": DEFAULT_SOURCE_DATE_EPOCH,
        "TZ": "UTC",
        "LC_ALL": "C.UTF-8",
        "LANG": "C.UTF-8",
        "PYTHONHASHSEED": "0",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PIP_NO_INDEX": "1",
        "PIP_NO_CACHE_DIR": "1",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }
    env.update(recipe.env)
    return env


def _tree_size(root: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            try:
                total += (Path(dirpath) / name).lstat().st_size
            except OSError:
                continue
    return total


def _tail(log: Path) -> str:
    with log.open("rb") as fh:
        fh.seek(0, os.SEEK_END)
        size = fh.tell()
        fh.seek(max(0, size - _LOG_TAIL))
        return fh.read().decode(errors="replace")


def _mount_point(recipe: BuildRecipe) -> Path:
    mount_point = Path(recipe.build_path).parent
    if mount_point.exists() and (not mount_point.is_dir() or any(mount_point.iterdir())):
        raise RecipeError(
            f"build recipe for {recipe.binary!r}: build path parent {mount_point} exists and is "
            "not an empty directory; the sandbox would hide it"
        )
    mount_point.mkdir(parents=True, exist_ok=True)
    return mount_point


def rebuild(recipe: BuildRecipe, source_tree: Path, scratch: Path) -> RebuildOutcome:
    """Rebuild ``recipe.binary`` from ``source_tree`` inside ``scratch`` (a new directory)."""
    prefix = isolation_command()
    mount_point = _mount_point(recipe)
    scratch.mkdir(parents=True, exist_ok=True)
    fresh = scratch / "root"
    tree_name = PurePosixPath(recipe.build_path).name
    shutil.copytree(source_tree, fresh / tree_name, symlinks=False)
    (fresh / "home").mkdir()
    (fresh / "tmp").mkdir()
    log = scratch / "build.log"
    if shutil.which("setpriv") is None:
        raise IsolationUnavailable("rebuild: 'setpriv' (util-linux) is needed to drop privileges")
    argv = [
        *prefix,
        "/bin/sh",
        "-c",
        _ENTER,
        "clearance-rebuild",
        str(fresh),
        str(mount_point),
        recipe.build_path,
        *recipe.argv(),
    ]
    max_bytes = recipe.max_output_bytes
    cpu_seconds = int(recipe.timeout_seconds * 4) + 1

    def limit() -> None:
        os.umask(0o022)
        resource.setrlimit(resource.RLIMIT_FSIZE, (max_bytes, max_bytes))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds))

    started = time.monotonic()
    status = OK
    returncode: int | None = None
    env = sandbox_env(recipe, PurePosixPath(recipe.build_path).parent)
    with log.open("wb") as log_fh:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log_fh,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=str(scratch),
            preexec_fn=limit,
            start_new_session=True,
        )
        try:
            returncode = proc.wait(timeout=recipe.timeout_seconds)
        except subprocess.TimeoutExpired:
            status = TIMEOUT
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    wall = time.monotonic() - started
    output = fresh / tree_name / recipe.output
    if status == OK and returncode != 0:
        status = FAILED
    if status == OK and _tree_size(fresh) > max_bytes:
        status = OUTPUT_LIMIT
    if status == OK and (
        not output.is_file()
        or output.is_symlink()
        or not output.resolve().is_relative_to(fresh.resolve())
    ):
        # A link out of the tree would make the inspector hash (and quote) a host file.
        status = NO_OUTPUT
    isolation = "network+mount namespaces" + (" (user ns)" if "--map-root-user" in prefix else "")
    isolation += ", read-only host mounts, no capabilities"
    return RebuildOutcome(
        status=status,
        returncode=returncode,
        log_tail=_tail(log),
        output=output if status == OK else None,
        isolation=isolation,
        wall_seconds=wall,
    )


def plain_build(recipe: BuildRecipe, source_tree: Path, scratch: Path) -> float:
    """Run the same recipe without any isolation (the benchmark's baseline); returns seconds."""
    work = scratch / "plain"
    shutil.copytree(source_tree, work, symlinks=False)
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '/usr/bin:/bin')}"
    env.update(recipe.env)
    started = time.monotonic()
    subprocess.run(recipe.argv(), cwd=work, env=env, capture_output=True, check=True)
    return time.monotonic() - started
