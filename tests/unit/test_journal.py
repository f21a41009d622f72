"""The journal: survives reopening, refuses foreign or corrupted files."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from ferry.errors import UsageError
from ferry.journal import JobRecord, JobStatus, Journal


def test_records_survive_reopen(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    j = Journal(path)
    j.start_run("sync")
    j.record_job("a -> b", JobRecord("a", "b", JobStatus.COPIED, "sha256:x", "sha256:x", 10, 0.5))
    j.record("docker://h", "sha256:blob", "proj/app")
    j.close()
    j2 = Journal(path)
    rec = j2.job("a -> b")
    assert rec is not None and rec.status is JobStatus.COPIED and rec.bytes == 10
    assert json.loads(json.dumps(rec.to_json()))["status"] == "copied"
    assert j2.db.execute("SELECT typeof(status), status FROM jobs").fetchone() == ("text", "copied")
    assert j2.holders("docker://h", "sha256:blob") == {"proj/app"}
    assert path.stat().st_mode & 0o777 == 0o600


def test_foreign_sqlite_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE t (x)")
    db.commit()
    db.close()
    with pytest.raises(UsageError, match="not a ferry journal"):
        Journal(path)


def test_garbage_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "garbage.db"
    path.write_bytes(b"this is not a database at all" * 100)
    with pytest.raises(UsageError, match="journal"):
        Journal(path)
