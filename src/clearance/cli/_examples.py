"""One or two examples per command, shown at the end of its ``--help`` and in the man page.

Keyed by the command path (``("log", "search")``).  Kept in one place so that
every command's help ends the same way; ``tests/cli/test_help.py`` fails for
a command that has none.  A group without an entry shows its actions' first
examples.
"""

from __future__ import annotations

EXAMPLES: dict[tuple[str, ...], tuple[str, ...]] = {
    ("audit",): (
        "clearance audit logdir --trust-root trust-root.json --artifacts artifacts --html audit.html",
        "clearance audit --server https://gw.example --trust-root trust-root.json "
        "--no-reinspect --post https://gw.example --json",
    ),
    ("bundle",): (
        "clearance bundle rules.yar --release release.json --log logdir --out bundle.json",
        "clearance bundle rules.yar --release release.json --server https://gw.example "
        "--out bundle.json",
    ),
    ("channel", "reset"): (
        "clearance channel reset --product endpoint-antivirus --channel stable --floor 2024.7.1 "
        '--key keys/policy.key --reason "stolen vendor key" --out reset.json',
    ),
    ("code", "rebuild"): (
        "clearance code rebuild dist/agent --source agent-src.tar.gz --recipe recipes.json",
    ),
    ("code", "endpoints"): (
        "clearance code endpoints --binary dist/agent --endpoint updates.example.com",
    ),
    ("completion",): (
        "source <(clearance completion bash)",
        "clearance completion zsh > ~/.zfunc/_clearance",
    ),
    ("entitlement", "create"): (
        "clearance entitlement create --from us-hospital.yaml --key keys/vendor.key "
        "--out us-hospital.json --opening us-hospital.opening.json",
        "clearance entitlement create --customer de-city --jurisdiction DE "
        "--product endpoint-antivirus --start 2024-01-01 --end 2026-01-01 "
        "--key keys/vendor.key --out de-city.json --opening de-city.opening.json",
    ),
    ("entitlement", "check"): ("clearance entitlement check us-hospital.yaml",),
    ("entitlement", "open"): (
        "clearance entitlement open de-city.json --opening de-city.opening.json",
    ),
    ("gateway", "init"): (
        "clearance gateway init --data gw --trust-root trust-root.json --log-key keys/log.key "
        "--vendor vendor=endpoint-antivirus",
        "clearance gateway init --data gw --trust-root trust-root.json --log-key keys/log.key "
        "--witness witness-1=http://127.0.0.1:8001=keys/witness-1.pub",
    ),
    ("gateway", "worker"): (
        "CLEARANCE_TOKEN=... clearance gateway worker --server https://gw.example "
        "--queue-dsn postgresql://queue/db --key keys/inspector.key --trust-root trust-root.json",
    ),
    ("inspect",): (
        "clearance inspect release.json --artifacts artifacts --key keys/inspector.key "
        "--trust-root trust-root.json --out verdict.json --sarif findings.sarif --html report.html",
    ),
    ("keys", "generate"): (
        "clearance keys generate vendor --dir keys",
        "clearance keys generate example.org/log --dir keys   # keys/example.org/log.key",
    ),
    ("log", "init"): (
        "clearance log init logdir --origin example.org/log --key keys/log.key",
        "clearance log init logdir --origin example.org/log --key keys/log.key "
        "--database postgresql:///clearance_log",
    ),
    ("log", "export"): (
        "clearance log export logdir /var/www/log   # static tiles for a web server",
    ),
    ("log", "append"): ("clearance log append logdir entry-1.bin entry-2.bin",),
    ("log", "verify"): ("clearance log verify logdir",),
    ("log", "checkpoint"): ("clearance log checkpoint logdir --json",),
    ("log", "prove"): ("clearance log prove logdir 0", "clearance log prove logdir 0 --size 10"),
    ("log", "search"): (
        "clearance log search logdir --artifact artifacts/rules.yar",
        "clearance log search --server https://gw.example --trust-root trust-root.json "
        "--product endpoint-antivirus --version 2024.7.1",
    ),
    ("log", "consistency"): ("clearance log consistency logdir 1 2",),
    ("man",): (
        "clearance man | man -l -",
        "clearance man --out /usr/local/share/man/man1/clearance.1",
    ),
    ("monitor",): (
        "clearance monitor logdir --trust-root trust-root.json --state monitor-state --once",
        "clearance monitor --server https://gw.example --trust-root trust-root.json "
        "--state monitor-state --config monitor.yaml",
    ),
    ("policy", "create"): ("clearance policy create --name us-2024 --out policy.yaml",),
    ("policy", "check"): ("clearance policy check policy.yaml",),
    ("policy", "explain"): (
        "clearance policy explain policy.yaml --entitlement us-hospital.yaml "
        "--customer us-hospital --release release.json --date 2024-10-01",
    ),
    ("policy", "sign"): (
        "clearance policy sign policy.yaml --key keys/policy.key --trust-root trust-root.json "
        "--out policy.json",
        "clearance submit policy.json --log logdir",
    ),
    ("release", "create"): (
        "clearance release create --product endpoint-antivirus --version 2024.7.1 "
        "--channel stable --content artifacts/rules.yar --key keys/vendor.key --out release.json",
    ),
    ("report",): (
        "clearance report logdir --trust-root trust-root.json --from 2024-06-01 "
        "--to 2024-12-31 --jurisdiction US --out report --key keys/policy.key "
        "--submit-server http://127.0.0.1:8443",
        "clearance report verify report --server http://127.0.0.1:8443 "
        "--trust-root trust-root.json",
    ),
    ("revoke", "release"): (
        "clearance revoke release release.json --key keys/policy.key "
        '--reason "backdoored build" --out revocation.json',
    ),
    ("revoke", "key"): (
        "clearance revoke key keys/vendor.pub --key keys/policy.key "
        '--reason "key stolen" --out revocation.json',
    ),
    ("serve",): ("clearance serve --data gw --port 8000",),
    ("submit",): (
        "clearance submit release.json --log logdir --trust-root trust-root.json",
        "CLEARANCE_TOKEN=... clearance submit release.json --server https://gw.example "
        "--artifacts artifacts",
    ),
    ("trust", "init"): (
        "clearance trust init --origin example.org/log --log-key keys/log.pub "
        "--vendor-key keys/vendor.pub --inspector-key keys/inspector.pub --out trust-root.json",
    ),
    ("trust", "sign"): (
        "clearance trust sign new-root.json --key keys/vendor.key --out rotation.json",
    ),
    ("trust", "rotate"): (
        "clearance trust rotate --current trust-root.json --rotation rotation.json "
        "--out trust-root-v2.json",
    ),
    ("trust", "show"): ("clearance trust show trust-root.json",),
    ("verdict", "sign"): (
        "clearance verdict sign release.json --decision approved --key keys/inspector.key "
        "--findings findings.sarif --out verdict.json",
        "clearance verdict sign release.json --decision approved --automatic auto-verdict.json "
        '--note "false positive: rule 7 matches our own installer" --key keys/inspector.key '
        "--out verdict.json",
    ),
    ("verify",): (
        "clearance verify rules.yar --bundle bundle.json --trust-root trust-root.json "
        "--state client-state",
        "clearance verify rules.yar --bundle bundle.json --trust-root trust-root.json "
        "--state client-state --server https://gw.example --customer de-city",
    ),
    ("witness", "serve"): (
        "clearance witness serve --key keys/witness-1.key --state wstate "
        "--log-key keys/log.pub --origin example.org/log --port 8001",
    ),
    ("witness", "collect"): (
        "clearance witness collect logdir --witness witness-1=http://127.0.0.1:8001=keys/witness-1.pub",
    ),
    ("witness", "conflicts"): ("clearance witness conflicts --state wstate",),
}


def examples_for(path: tuple[str, ...]) -> tuple[str, ...]:
    """The examples of ``path``; for a group, the first example of each of its actions."""
    if path in EXAMPLES:
        return EXAMPLES[path]
    children = [v[0] for k, v in EXAMPLES.items() if len(k) == len(path) + 1 and k[:-1] == path]
    return tuple(children[:2])
