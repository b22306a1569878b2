"""A log's data folder: what files it holds, how a new one is made, which backend it uses.

The layout is described in :mod:`clearance.log.store`.  Creating a log
writes its key first and its database (or DSN file) last, so the presence
of ``log.db`` or ``log.dsn`` marks a complete log.
"""

from __future__ import annotations

from pathlib import Path

from clearance._files import write_private
from clearance.keys import KeyFormatError, Signer, load_signer
from clearance.log import merkle
from clearance.log._publish import Publisher
from clearance.log._sqlite import Database, create_database
from clearance.log.checkpoint import Checkpoint, CheckpointExtension, check_origin, sign_checkpoint
from clearance.log.errors import CheckpointFormatError, LogCorruptedError, LogInputError
from clearance.log.storage import LogStorage

DB_NAME = "log.db"
DSN_NAME = "log.dsn"
KEY_NAME = "log.key"
PUB_NAME = "log.pub"
PUBLIC_NAME = "public"


def create_log_files(
    directory: Path,
    origin: str,
    signer: Signer,
    extension: CheckpointExtension | None,
    database: str | None,
) -> None:
    """Make an empty log in ``directory`` (see :meth:`TransparencyLog.create`)."""
    try:
        check_origin(origin)
    except CheckpointFormatError as exc:
        raise LogInputError(f"origin: {exc}") from None
    if (directory / DB_NAME).exists() or (directory / DSN_NAME).exists():
        raise LogInputError(f"{directory}: already holds a log, refusing to overwrite it")
    if directory.exists() and not directory.is_dir():
        raise LogInputError(f"{directory}: exists and is not a directory")
    try:
        directory.mkdir(parents=True, exist_ok=True)
        if database is None:
            (directory / PUBLIC_NAME).mkdir(exist_ok=True)
    except OSError as exc:
        raise LogInputError(f"{directory}: cannot create the log: {exc.strerror}") from None
    lines: tuple[str, ...] = ()
    if extension is not None:
        extension.rebuild(())
        lines = extension.lines()
    note = sign_checkpoint(Checkpoint(origin, 0, merkle.EMPTY_ROOT, lines), signer)
    write_private(directory / KEY_NAME, signer.to_string() + "\n")
    (directory / PUB_NAME).write_text(signer.verifier.to_string() + "\n")
    meta = {"origin": origin, "verifier": signer.verifier.to_string()}
    if database is not None:
        from clearance.log._postgres import create_postgres

        create_postgres(database, meta, note.to_bytes(), merkle.EMPTY_ROOT)
        write_private(directory / DSN_NAME, database + "\n")
        return
    # The database appears last, by rename: its presence marks a complete log.
    create_database(directory / DB_NAME, meta, note.to_bytes())


def open_backend(directory: Path, name: str) -> tuple[Signer, LogStorage, Publisher | None]:
    """The log's key, its storage and (SQLite only) the publisher of ``public/``.

    The storage is checked to belong to the key; on any refusal nothing stays open.
    """
    postgres = (directory / DSN_NAME).is_file()
    if not postgres and not (directory / DB_NAME).is_file():
        raise LogInputError(f"{directory}: not a Clearance log (no {DB_NAME})")
    try:
        signer = load_signer(directory / KEY_NAME)
    except KeyFormatError as exc:
        raise LogInputError(f"{directory}: log key unusable: {exc}") from None
    storage: LogStorage
    publisher: Publisher | None
    if postgres:
        from clearance.log._postgres import PostgresStorage

        storage = PostgresStorage((directory / DSN_NAME).read_text().strip(), name=name)
        publisher = None
    else:
        storage = Database(directory / DB_NAME)
        publisher = Publisher(directory / PUBLIC_NAME)
    try:
        if storage.meta.get("verifier") != signer.verifier.to_string():
            raise LogCorruptedError(
                f"{directory / KEY_NAME}: is not the key this log was created with"
            )
    except BaseException:
        storage.close()
        raise
    return signer, storage, publisher
