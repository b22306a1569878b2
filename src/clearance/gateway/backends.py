"""Which storage a gateway uses, chosen by the ``database`` DSN in ``gateway.json``.

Without a DSN everything is in the data directory (SQLite files, artifact and
TUF files): one machine, the embedded default.  With one, everything replicas
must agree on is in that PostgreSQL database - the log (opened by
:class:`~clearance.gateway._log.GatewayLog`), the metadata index, the health
reports, the uploaded artifacts, the entitlement openings and the TUF
repository's files - so that
replicas with separate data directories on separate machines serve the same
gateway.  The data directory then holds configuration, keys and caches.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from clearance.gateway.config import GatewayConfig
from clearance.gateway.customers import Openings, OpeningStore
from clearance.gateway.health_store import SQLiteHealthReportStore
from clearance.gateway.inspections import ArtifactBlobs
from clearance.gateway.store import HealthReportStore, MetadataStore
from clearance.gateway.store_sqlite import SQLiteMetadataStore
from clearance.gateway.tuf_repo import TufRepository, TufShare


@dataclass(frozen=True)
class Backends:
    store: MetadataStore
    health_reports: HealthReportStore
    tuf: TufRepository
    openings: Openings
    #: Artifacts shared by replicas; ``None``: only the data directory's files.
    blobs: ArtifactBlobs | None


def tuf_share(database: str | None) -> TufShare | None:
    """The shared store of the TUF repository's files for a gateway on ``database``."""
    if database is None:
        return None
    from clearance.gateway.shared_files import PostgresTufFiles

    return PostgresTufFiles(database)


def open_backends(data_dir: Path, config: GatewayConfig) -> Backends:
    """The metadata store, health-report store, TUF repository and shared artifact store of
    a data directory, on its ``database`` if the config names one."""
    if config.database is None:
        return Backends(
            SQLiteMetadataStore(data_dir / "gateway.sqlite"),
            SQLiteHealthReportStore(data_dir / "health.sqlite"),
            TufRepository(data_dir / "tuf"),
            OpeningStore(data_dir / "openings"),
            None,
        )
    # Imported here: the embedded gateway starts without loading psycopg.
    from clearance.gateway.health_store_postgres import PostgresHealthReportStore
    from clearance.gateway.shared_files import PostgresArtifactBlobs, PostgresOpeningStore
    from clearance.gateway.store_postgres import PostgresMetadataStore

    opened: list[MetadataStore | HealthReportStore | ArtifactBlobs | Openings] = []
    try:  # a failure half-way closes what was opened (their pools hold connections)
        store = PostgresMetadataStore(config.database)
        opened.append(store)
        health = PostgresHealthReportStore(config.database)
        opened.append(health)
        blobs = PostgresArtifactBlobs(config.database)
        opened.append(blobs)
        openings = PostgresOpeningStore(config.database)
        opened.append(openings)
        tuf = TufRepository(data_dir / "tuf", shared=tuf_share(config.database))
    except BaseException:
        for backend in opened:
            backend.close()
        raise
    return Backends(store, health, tuf, openings, blobs)
