"""Helpers for witness tests: an in-memory Merkle log signed with a real key, and real
HTTP servers (uvicorn) on 127.0.0.1."""

from __future__ import annotations

import base64
import socket
import threading
import time
from dataclasses import dataclass, field

import uvicorn
from fastapi import FastAPI

from clearance.keys import Note, Signer, sign_note
from clearance.log import merkle


@dataclass
class MemoryLog:
    """A list of leaves, its RFC 9162 tree, and checkpoints signed by a real Ed25519 key."""

    origin: str
    signer: Signer
    leaves: list[bytes] = field(default_factory=list)

    def append(self, *entries: bytes) -> None:
        self.leaves.extend(merkle.leaf_hash(e) for e in entries)

    def _read(self, level: int, index: int) -> bytes:
        lo = index << level
        return merkle.root_from_leaf_hashes(self.leaves[lo : lo + (1 << level)])

    def root(self, size: int | None = None) -> bytes:
        n = len(self.leaves) if size is None else size
        return merkle.tree_root(n, self._read)

    def consistency_proof(self, old: int, new: int) -> list[bytes]:
        return merkle.consistency_proof(old, new, self._read)

    def checkpoint(self, size: int | None = None) -> Note:
        n = len(self.leaves) if size is None else size
        root = base64.b64encode(self.root(n)).decode()
        return sign_note(f"{self.origin}\n{n}\n{root}\n", [self.signer])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class RunningServer:
    url: str
    server: uvicorn.Server
    thread: threading.Thread

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def start_server(app: FastAPI) -> RunningServer:
    """Serve ``app`` with uvicorn on a pre-bound loopback socket in a thread."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    return RunningServer(f"http://127.0.0.1:{port}", server, thread)
