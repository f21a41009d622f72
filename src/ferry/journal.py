"""The run journal (SQLite, WAL): every job's outcome and the blobs known at each destination.

A run killed at any moment and started again with the same inputs reads it back: finished images
are recognised by digest and cost no transfer, and blobs already sent are not asked about again.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from ferry.errors import UsageError

APPLICATION_ID = 0x46455259  # "FERY": marks a file as ferry's journal
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY, command TEXT NOT NULL, started REAL NOT NULL, finished REAL
);
CREATE TABLE IF NOT EXISTS jobs (
    key TEXT PRIMARY KEY, source TEXT NOT NULL, destination TEXT NOT NULL, status TEXT NOT NULL,
    digest TEXT, source_digest TEXT, bytes INTEGER NOT NULL DEFAULT 0, seconds REAL NOT NULL DEFAULT 0,
    retries INTEGER NOT NULL DEFAULT 0, error TEXT, run_id INTEGER, updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS blobs (
    store TEXT NOT NULL, digest TEXT NOT NULL, repo TEXT NOT NULL, PRIMARY KEY (store, digest, repo)
) WITHOUT ROWID;
"""


def default_path(name: str = "journal.db") -> Path:
    from platformdirs import user_state_dir

    return Path(user_state_dir("ferry")) / name


class JobStatus(StrEnum):
    """A job's outcome; the values are what the JSON report and the journal hold."""

    COPIED = "copied"
    SKIPPED = "skipped"  # the destination already held the same digest
    FAILED = "failed"


@dataclass(slots=True)
class JobRecord:
    source: str
    destination: str
    status: JobStatus
    digest: str | None = None
    source_digest: str | None = None
    bytes: int = 0
    seconds: float = 0.0
    retries: int = 0
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class Journal:
    """One SQLite file; a foreign or corrupted file is refused, never reused."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fresh = not self.path.exists() or self.path.stat().st_size == 0
        try:
            self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._check(fresh)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            if fresh:
                self.db.executescript(_SCHEMA)
                self.db.execute(f"PRAGMA application_id={APPLICATION_ID}")
                self.db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
                # It names registries and repositories: readable by its owner only.
                with contextlib.suppress(OSError):
                    os.chmod(self.path, 0o600)
        except sqlite3.DatabaseError as e:
            raise UsageError(f"journal {self.path} is not a ferry journal or is corrupted ({e})",
                             hint="move it aside or choose another file with --journal") from None
        self._held: dict[tuple[str, str], set[str]] = {}
        for store, digest, repo in self.db.execute("SELECT store, digest, repo FROM blobs"):
            self._held.setdefault((store, digest), set()).add(repo)
        self.run_id: int | None = None

    def _check(self, fresh: bool) -> None:
        if fresh:
            return
        app_id = self.db.execute("PRAGMA application_id").fetchone()[0]
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        if app_id != APPLICATION_ID:
            raise UsageError(f"journal {self.path} is not a ferry journal (foreign SQLite file or other data)",
                             hint="choose another file with --journal; ferry never reuses a foreign file")
        if version != SCHEMA_VERSION:
            raise UsageError(f"journal {self.path} has schema version {version}; this ferry reads {SCHEMA_VERSION}",
                             hint="use a new journal file")
        result = self.db.execute("PRAGMA quick_check").fetchone()[0]
        if result != "ok":
            raise UsageError(f"journal {self.path} is corrupted ({result})", hint="move it aside and run again")

    # -- runs and jobs ----------------------------------------------------------------------

    def start_run(self, command: str) -> int:
        cur = self.db.execute("INSERT INTO runs (command, started) VALUES (?, ?)", (command, time.time()))
        self.run_id = int(cur.lastrowid or 0)
        return self.run_id

    def finish_run(self) -> None:
        if self.run_id is not None:
            self.db.execute("UPDATE runs SET finished=? WHERE id=?", (time.time(), self.run_id))

    def record_job(self, key: str, rec: JobRecord) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO jobs (key, source, destination, status, digest, source_digest, bytes, seconds,"
            " retries, error, run_id, updated) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (key, rec.source, rec.destination, rec.status, rec.digest, rec.source_digest, rec.bytes, rec.seconds,
             rec.retries, rec.error, self.run_id, time.time()),
        )

    def job(self, key: str) -> JobRecord | None:
        row = self.db.execute(
            "SELECT source, destination, status, digest, source_digest, bytes, seconds, retries, error"
            " FROM jobs WHERE key=?", (key,)
        ).fetchone()
        if row is None:
            return None
        source, destination, status, *rest = row
        return JobRecord(source, destination, JobStatus(status), *rest)

    # -- blob ledger (see ferry.copy.BlobLedger) -------------------------------------------

    def holders(self, store: str, digest: str) -> set[str]:
        return self._held.get((store, digest), set())

    def record(self, store: str, digest: str, repo: str) -> None:
        held = self._held.setdefault((store, digest), set())
        if repo not in held:
            held.add(repo)
            self.db.execute("INSERT OR IGNORE INTO blobs (store, digest, repo) VALUES (?,?,?)", (store, digest, repo))

    def forget(self, store: str, digest: str, repo: str) -> None:
        """The repository turned out not to hold the blob after all (deleted since it was recorded)."""
        self._held.get((store, digest), set()).discard(repo)
        self.db.execute("DELETE FROM blobs WHERE store=? AND digest=? AND repo=?", (store, digest, repo))

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self.db.close()
