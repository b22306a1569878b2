"""The worked example behind ``make run``: every party, end to end, on 127.0.0.1.

1. keys for each role (log, vendor, inspector, policy authority, client, two witnesses);
2. two witnesses and the gateway (embedded store, in-process inspection workers);
3. the vendor releases real detection content: YARA rules written for the demo, two
   files of the public signature-base set (Detection Rule License 1.1, attributed) and
   a ClamAV signature database written for the demo (when clamscan is installed);
4. the embedded inspector inspects it with the real engine and signs a verdict; the
   approved release rolls out ring by ring and is published in the TUF repository;
5. the policy authority logs the worked example policy of the articles; the vendor
   logs two customers' entitlements (Germany and the United States);
6. the German customer's client finds the update, downloads it with a stock TUF client,
   verifies the Clearance bundle offline (signatures, verdict, log inclusion, witness
   cosignatures) and installs it; the US customer is told why the update is withheld,
   citing the logged policy.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console

from clearance.attest import Artifact, Statement, Subject, canonical_json, create_policy
from clearance.attest import create_release as sign_release
from clearance.attest.trust_root import TrustRoot
from clearance.client import BundleVerifier
from clearance.demo.world import World, build_world
from clearance.errors import BadInput, ClearanceError
from clearance.gateway.client import GatewayClient
from clearance.gateway.server import BackgroundServer, RunningGateway
from clearance.keys import Note, Signer, generate_key_files, load_signer
from clearance.policy import ENTITLEMENT_PREDICATE_TYPE, Entitlement
from clearance.policy.example import us_restriction_policy

SIGNATURE_BASE_FILES = ("gen_mimikatz.yar", "crime_wannacry.yar")
SIGNATURE_BASE_ATTRIBUTION = (
    "Includes gen_mimikatz.yar and crime_wannacry.yar from signature-base "
    "(github.com/Neo23x0/signature-base, commit 8a89b3bf54517bbc35718460321d42536e1e6198), "
    "by Florian Roth and contributors, under the Detection Rule License 1.1; the rules' "
    "author fields are kept unchanged."
)
PRODUCT = "endpoint-antivirus"
#: The demo's own ClamAV signature databases (body, logical and hash signatures).
CLAMAV_FILES = ("demo_signatures.ndb", "demo_signatures.ldb", "demo_signatures.hdb")
MARKER = ".clearance-demo"


class DemoError(ClearanceError):
    """The worked example could not complete (the message says which step)."""


class DemoDataDirError(BadInput):
    """The --data folder exists and is not one the demo made."""


@dataclass
class Demo:
    data_dir: Path
    port: int
    shared_dir: Path | None
    console: Console = field(default_factory=lambda: Console(highlight=False))
    witnesses: list[BackgroundServer] = field(default_factory=list)
    gateway: RunningGateway | None = None
    world: World | None = None
    summary: dict[str, Any] = field(default_factory=dict)

    # -- helpers --------------------------------------------------------------------------

    def step(self, title: str) -> None:
        self.console.print(f"\n[bold cyan]▶ {title}[/]")

    def say(self, text: str) -> None:
        self.console.print(f"  {text}", soft_wrap=True)

    def wait(self, what: str, predicate: Callable[[], Any], timeout: float = 120.0) -> Any:
        deadline = time.monotonic() + timeout
        with self.console.status(f"  {what}…"):
            while time.monotonic() < deadline:
                value = predicate()
                if value:
                    return value
                time.sleep(0.2)
        raise DemoError(f"timed out after {timeout:.0f} s waiting for: {what}")

    # -- the story ------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        if self.data_dir.exists():
            # Recreated on each run, but only a folder this demo made is ever deleted.
            made_by_demo = (self.data_dir / MARKER).exists() or (
                (self.data_dir / "gateway" / "gateway.json").is_file()
                and (self.data_dir / "keys").is_dir()
            )
            if any(self.data_dir.iterdir()) and not made_by_demo:
                raise DemoDataDirError(
                    f"{self.data_dir} exists and was not made by the demo: refusing to delete "
                    "it (choose another --data)"
                )
            shutil.rmtree(self.data_dir)
        self.data_dir.mkdir(parents=True)
        (self.data_dir / MARKER).write_text("made by python -m clearance.demo; deleted on rerun\n")
        keys_dir = self.data_dir / "keys"
        keys_dir.mkdir()

        self.step("Keys for each role (Ed25519, C2SP signed-note encoding)")
        origin = "clearance.demo/log"
        log_signer = load_signer(generate_key_files(origin, keys_dir)[0])
        witness_signers = [
            load_signer(generate_key_files(f"witness-{n}", keys_dir)[0]) for n in (1, 2)
        ]

        self.step("Two independent witnesses (C2SP tlog-witness)")
        urls = [self._start_witness(s, origin, log_signer) for s in witness_signers]
        for signer, url in zip(witness_signers, urls, strict=True):
            self.say(f"{signer.name}: {url}  key {signer.verifier.to_string()}")

        world = build_world(
            self.data_dir,
            origin=origin,
            product=PRODUCT,
            embedded_inspector=True,
            witness_urls=urls,
            witness_signers=witness_signers,
            log_signer=log_signer,
        )
        self.world = world
        for role in ("vendor", "inspector", "policy", "client"):
            party: Signer = getattr(world, role)
            self.say(f"{role:9} {party.verifier.to_string()}")
        self.say(f"log       {world.log.verifier.to_string()}")
        self.say(f"trust root: {self.data_dir / 'trust-root.json'}")

        self.step("Gateway (embedded store, in-process inspection workers)")
        self.gateway = RunningGateway(world.data_dir, port=self.port)
        url = self.gateway.url
        self.say(f"listening on {url}")

        self._release(world, url)
        self._policy_and_entitlements(world, url)
        self._client_installs(world, url)
        self._withheld(world, url)
        self._urls(url)
        return self.summary

    def _start_witness(self, signer: Signer, origin: str, log_signer: Signer) -> str:
        from clearance.witness import LogConfig, Witness, WitnessState
        from clearance.witness.server import create_app

        state = WitnessState.open(self.data_dir / signer.name)
        witness = Witness(signer, [LogConfig(origin, (log_signer.verifier,))], state)
        server = BackgroundServer(create_app(witness))
        self.witnesses.append(server)
        return server.url

    def _content(self, world: World) -> tuple[list[Path], str]:
        out = self.data_dir / "vendor" / "content"
        out.mkdir(parents=True)
        own = out / "demo_rules.yar"
        own.write_bytes(
            resources.files("clearance.demo").joinpath("content/demo_rules.yar").read_bytes()
        )
        files = [own]
        notes = "Detection content for the Clearance worked example."
        # A ClamAV database update beside the YARA rules (inspected with Debian's clamscan).
        if shutil.which("clamscan") is not None:
            for name in CLAMAV_FILES:
                target = out / name
                target.write_bytes(
                    resources.files("clearance.demo").joinpath(f"content/{name}").read_bytes()
                )
                files.append(target)
        else:
            self.say("[yellow]clamscan not installed: releasing only YARA content[/]")
        base = None if self.shared_dir is None else self.shared_dir / "rulesets/signature-base"
        if base is not None and (base / "yara").is_dir():
            for name in SIGNATURE_BASE_FILES:
                target = out / name
                shutil.copyfile(base / "yara" / name, target)
                files.append(target)
            shutil.copyfile(base / "LICENSE", out / "signature-base-LICENSE.txt")
            notes += " " + SIGNATURE_BASE_ATTRIBUTION
        else:
            self.say("[yellow]shared/rulesets not found: releasing only the demo's own rules[/]")
        return files, notes

    def _release(self, world: World, url: str) -> None:
        self.step("Vendor releases detection content (YARA rules and a ClamAV database)")
        files, notes = self._content(world)
        artifacts = [Artifact.from_file(p, "content") for p in files]
        envelope = sign_release(
            product=PRODUCT,
            version="2024.7.1",
            channel="stable",
            artifacts=artifacts,
            signers=world.vendor,
            notes=notes,
        )
        (self.data_dir / "vendor" / "release.json").write_bytes(envelope.to_bytes())
        with GatewayClient(url, world.token("vendor")) as vendor:
            receipt = vendor.submit(envelope.to_bytes())
            for path in files:
                vendor.upload_artifact(path.read_bytes())
        self.summary["release_sha256"] = envelope.sha256
        self.summary["release_log_index"] = receipt["log_index"]
        for a in artifacts:
            self.say(f"{a.name}: {a.size} bytes, sha256 {a.sha256[:16]}…")
        self.say(
            f"release {PRODUCT} 2024.7.1 logged at index {receipt['log_index']} "
            f"(receipt: inclusion proof of {len(receipt['inclusion_proof'])} hashes under a "
            f"signed checkpoint of size {receipt['tree_size']})"
        )

        self.step(
            "Independent inspection (real yara-x and clamscan engines, sandboxed) and verdict"
        )
        sha = envelope.sha256
        with GatewayClient(url) as anyone:

            def inspected() -> dict[str, Any] | None:
                status = anyone.status(sha)
                state = status["release"]["state"]
                if state in ("approved", "rejected", "needs-review", "inspection-failed"):
                    return status
                return None

            status = self.wait("inspecting", inspected, timeout=600)
            state = status["release"]["state"]
            for verdict in status["verdicts"]:
                self.say(
                    f"verdict by {verdict['inspector']}: {verdict['decision']} "
                    f"(log index {verdict['log_index']})"
                )
            if state != "approved":
                raise DemoError(
                    f"the release was not approved: {state} ({status['release']['detail']})"
                )
            self.summary["verdicts"] = status["verdicts"]

            self.step("Staged rollout: canary 1 %, early 10 %, broad 100 % (soak: seconds)")
            status = self.wait(
                "rolling out",
                lambda: (
                    (s := anyone.status(sha))["rollout"]
                    and s["rollout"]["status"] == "complete"
                    and s
                ),
            )
            for t in status["transitions"]:
                self.say(f"log index {t['log_index']}: {t['event']} {t['ring']} — {t['reason']}")
            self.summary["transitions"] = [t["event"] for t in status["transitions"]]

    def _policy_and_entitlements(self, world: World, url: str) -> None:
        self.step("Policy authority logs the articles' policy; vendor logs entitlements")
        policy = us_restriction_policy()
        with GatewayClient(url, world.token("policy")) as authority:
            receipt = authority.submit(
                create_policy(policy.to_dict(), world.policy, name=policy.name).to_bytes()
            )
        self.summary["policy_log_index"] = receipt["log_index"]
        rule = policy.rules[0]
        self.say(
            f"policy {policy.name!r} at log index {receipt['log_index']}: in "
            f"{rule.jurisdiction}, no new sales from {rule.no_new_sales_after:%Y-%m-%d}, "
            f"no updates from {rule.no_updates_after:%Y-%m-%d}, "
            f"{rule.grace.days if rule.grace else 0} days of farewell updates, "
            f"allowed: {', '.join(rule.allowed_categories)}"
        )
        with GatewayClient(url, world.token("vendor")) as vendor:
            for customer, jurisdiction in (("de-stadtwerke", "DE"), ("us-hospital", "US")):
                ent = Entitlement.from_dict(
                    {
                        "customer": customer,
                        "jurisdiction": jurisdiction,
                        "product": PRODUCT,
                        "start": "2023-01-01",
                        "end": "2099-01-01",
                        "client_keys": [world.client.verifier.to_string()],
                    }
                )
                body = ent.to_dict()
                subject = Subject(customer, hashlib.sha256(canonical_json(body)).hexdigest())
                env = Statement((subject,), ENTITLEMENT_PREDICATE_TYPE, body).sign([world.vendor])
                r = vendor.submit(env.to_bytes())
                self.say(f"entitlement {customer} ({jurisdiction}) at log index {r['log_index']}")

    def _client_installs(self, world: World, url: str) -> None:
        self.step("Client de-stadtwerke: find, download (TUF), verify (bundle), install")
        customer = "de-stadtwerke"
        client_dir = self.data_dir / "client"
        with GatewayClient(url, world.token("client")) as client:
            latest = client.latest(PRODUCT, "stable", customer)
            offered = latest["offered"]
            if offered is None:
                raise DemoError(f"no update offered to {customer}: {latest['reason']}")
            self.say(
                f"gateway offers {PRODUCT} {offered['version']} (log index "
                f"{offered['log_index']}); withheld: {latest['withheld']}"
            )
            self._wait_witnessed(url, world.trust_root)
            bundle = client.bundle(offered["sha256"])
        (client_dir / "bundles").mkdir(parents=True)
        (client_dir / "bundles" / f"{offered['sha256']}.json").write_bytes(bundle)
        paths = self._tuf_download(url, client_dir, offered)
        verifier = BundleVerifier(world.trust_root)
        installed = client_dir / "installed"
        installed.mkdir()
        for name, path in paths.items():
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            result = verifier.verify(digest, bundle)
            shutil.copyfile(path, installed / name)
            self.say(
                f"[green]verified[/] {name}: logged at {result.log_index} in tree "
                f"{result.checkpoint_size}, approved by {', '.join(result.inspectors)}, "
                f"witnessed by {', '.join(result.witnesses)} → installed"
            )
        self.summary["installed"] = sorted(paths)
        self.summary["client_dir"] = str(installed)

    def _wait_witnessed(self, url: str, trust_root: TrustRoot) -> None:
        need = trust_root.witnesses.threshold

        def cosigned() -> bool:
            note = Note.from_bytes(httpx.get(f"{url}/log/checkpoint").content)
            names = {s.name for s in note.signatures}
            return sum(k.name in names for k in trust_root.witnesses.keys) >= need

        self.wait(f"checkpoint cosigned by {need} witnesses", cosigned, timeout=60)

    def _tuf_download(self, url: str, client_dir: Path, offered: dict[str, Any]) -> dict[str, Path]:
        from tuf.ngclient import Updater  # type: ignore[attr-defined]

        metadata = client_dir / "tuf"
        metadata.mkdir()
        # The TUF root is pinned out of band in a real deployment; here it is fetched once.
        (metadata / "root.json").write_bytes(httpx.get(f"{url}/tuf/metadata/1.root.json").content)
        downloads = client_dir / "downloads"
        downloads.mkdir()
        updater = Updater(
            metadata_dir=str(metadata),
            metadata_base_url=f"{url}/tuf/metadata/",
            target_dir=str(downloads),
            target_base_url=f"{url}/tuf/targets/",
            bootstrap=None,
        )
        updater.refresh()
        out: dict[str, Path] = {}
        for artifact in offered["artifacts"]:
            path = f"{PRODUCT}/{offered['version']}/{artifact['name']}"
            info = updater.get_targetinfo(path)
            if info is None:
                raise DemoError(f"TUF repository has no target {path}")
            out[artifact["name"]] = Path(updater.download_target(info))
            self.say(f"TUF: {path} ({info.length} bytes) — signatures, versions, expiry checked")
        return out

    def _withheld(self, world: World, url: str) -> None:
        self.step("Client us-hospital: the update is withheld, and the log says why")
        with GatewayClient(url, world.token("client")) as client:
            latest = client.latest(PRODUCT, "stable", "us-hospital")
        reason = latest["reason"] or {}
        self.say(
            f"withheld: {latest['withheld']}; rule {reason.get('rule')!r}: {reason.get('reason')}"
        )
        self.say(f"policy {reason.get('policy')!r} at log index {reason.get('policy_log_index')}")
        self.summary["us_withheld"] = latest["withheld"]
        self.summary["us_reason_policy_index"] = reason.get("policy_log_index")

    def _urls(self, url: str) -> None:
        sha = self.summary["release_sha256"]
        self.step("Look around")
        for label, path in (
            ("dashboard", "/"),
            ("release", f"/releases/{sha}"),
            ("log entry 0", "/entries/0"),
            ("policy", "/policy"),
            ("rollouts", "/rollouts"),
            ("witnesses", "/witnesses"),
            ("API (OpenAPI)", "/docs"),
            ("log checkpoint", "/log/checkpoint"),
            ("trust root", "/trust-root.json"),
            ("TUF timestamp", "/tuf/metadata/timestamp.json"),
            ("bundle", f"/api/v1/bundles/{sha}"),
        ):
            self.say(f"{label:15} {url}{path}")
        for n, w in enumerate(self.witnesses, 1):
            self.say(f"{'witness ' + str(n):15} {w.url}/")
        self.summary["url"] = url

    def close(self) -> None:
        if self.gateway is not None:
            self.gateway.stop()
        for server in self.witnesses:
            server.stop()


def main(data_dir: Path, port: int, once: bool, shared_dir: Path | None) -> int:
    demo = Demo(data_dir, port, shared_dir)
    try:
        demo.run()
        if once:
            demo.console.print("\n[bold green]Worked example complete.[/]")
            return 0
        demo.console.print("\n[bold green]Serving; press Ctrl-C to stop.[/]")
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            while not stop.wait(1.0):
                pass
        except KeyboardInterrupt:
            pass
        return 0
    finally:
        demo.close()


def default_shared_dir() -> Path | None:
    env = os.environ.get("CLEARANCE_SHARED")
    if env:
        return Path(env)
    here = Path.cwd().resolve()
    for candidate in (here.parent / "shared", here / "shared"):
        if candidate.is_dir():
            return candidate
    return None
