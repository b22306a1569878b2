#!/usr/bin/env bash
# Installs (as root, from Debian's packages) and starts what the tests and
# benchmarks need beyond pyproject.toml.  Idempotent: a second run is quick.
set -euo pipefail

need=()
command -v go >/dev/null 2>&1 || need+=(golang-go)
[ -d /usr/share/gocode/src/golang.org/x/mod/sumdb ] || need+=(golang-golang-x-mod-dev)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v nginx >/dev/null 2>&1 || need+=(nginx-light)
command -v pg_ctlcluster >/dev/null 2>&1 || need+=(postgresql)
command -v unshare >/dev/null 2>&1 || need+=(util-linux)
command -v diffoscope >/dev/null 2>&1 || need+=(diffoscope-minimal)
command -v make >/dev/null 2>&1 || need+=(make)
command -v gcc >/dev/null 2>&1 || need+=(gcc)
# Durability test (issue 12): traces the fsync/syncfs order of a log append.
command -v strace >/dev/null 2>&1 || need+=(strace)
# ClamAV engine (issue 15): clamscan loads and scans vendor signature databases; the
# engine's test files seed the evidence corpus.  freshclam is never run (no network).
command -v clamscan >/dev/null 2>&1 || need+=(clamav)
[ -d /usr/share/clamav-testfiles ] || need+=(clamav-testfiles)

if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "install-system-deps: need root to install: ${need[*]}" >&2
        exit 1
    fi
    echo "install-system-deps: installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# Rebuild sandbox (issue 7): a non-root inspector needs user namespaces, which Ubuntu 24.04
# restricts through AppArmor by default.
if [ "$(id -u)" -eq 0 ] && [ -w /proc/sys/kernel/apparmor_restrict_unprivileged_userns ]; then
    echo 0 > /proc/sys/kernel/apparmor_restrict_unprivileged_userns || true
fi

# PostgreSQL: start the packaged cluster when it is not answering.
if command -v pg_isready >/dev/null 2>&1 && ! pg_isready -q -h 127.0.0.1 -p 5432; then
    if [ -d /etc/postgresql ] && [ -n "$(ls /etc/postgresql 2>/dev/null)" ]; then
        pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
    fi
fi
# A PostgreSQL role for the user running the tests (peer login on the local socket:
# DSN "dbname=postgres"), used by the PostgreSQL job-queue tests.
if command -v psql >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ] && id postgres >/dev/null 2>&1; then
    me="$(id -un)"
    if ! su postgres -c "psql -tAc \"SELECT 1 FROM pg_roles WHERE rolname='$me'\"" 2>/dev/null | grep -q 1; then
        su postgres -c "createuser --superuser '$me'" || true
    fi
fi
exit 0
