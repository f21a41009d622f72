"""``--shard INDEX/COUNT``: one run takes only its share of a migration or sync.

Work is split by source repository: every tag of a repository, its untagged artifacts and its
accessories (signatures, SBOMs live in the subject's repository) land on one shard, so the blobs
they share are uploaded by one process. The hash is SHA-256 of the repository path (not Python's
salted ``hash``), so every machine computes the same split; the registry host is left out, so two
shards that spell the source differently (``localhost`` / ``127.0.0.1``) still agree.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ferry.errors import UsageError
from ferry.plan.model import Expected, Job
from ferry.refs import parse_repository
from ferry.syncing import SyncPlan

if TYPE_CHECKING:  # a sync never builds a migration's plan: its inventory (Harbor's client) stays unloaded
    from ferry.plan.inventory import MigrationPlan

INDEX_ENV = "JOB_COMPLETION_INDEX"  # set by a Kubernetes Indexed Job in every pod


@dataclass(frozen=True, slots=True)
class Shard:
    index: int
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def owns(self, repository: str) -> bool:
        return shard_of(repository, self.count) == self.index

    def to_json(self) -> dict[str, int]:
        return {"index": self.index, "count": self.count}


def runs_whole_project_work(shard: Shard | None) -> bool:
    """Project configuration and Helm charts are not split by repository: shard 0 migrates them all
    (shards racing to create one robot or upload one chart would refuse each other)."""
    return shard is None or shard.index == 0


def journal_name(shard: Shard | None) -> str:
    """The default journal's file name: shards run side by side on one machine keep one each."""
    return "journal.db" if shard is None else f"journal-shard{shard.index}of{shard.count}.db"


def shard_of(repository: str, count: int) -> int:
    digest = hashlib.sha256(repository.encode()).digest()
    return int.from_bytes(digest[:8], "big") % count


def parse_shard(text: str | None, environ: Mapping[str, str] = os.environ) -> Shard | None:
    """``INDEX/COUNT`` (0 ≤ INDEX < COUNT) or ``auto/COUNT`` (INDEX from ``$JOB_COMPLETION_INDEX``)."""
    if text is None:
        return None
    hint = "expected INDEX/COUNT such as 0/4, or auto/COUNT inside a Kubernetes Indexed Job"
    index_text, sep, count_text = text.partition("/")
    if not sep or not count_text.isdigit() or int(count_text) < 1:
        raise UsageError(f"invalid --shard {text!r}", hint=hint)
    count = int(count_text)
    if index_text == "auto":
        index_text = environ.get(INDEX_ENV, "")
        if not index_text:
            raise UsageError(f"--shard auto/{count}: ${INDEX_ENV} is not set",
                             hint="auto reads the index a Kubernetes Indexed Job gives each pod; elsewhere give it")
    if not index_text.isdigit() or int(index_text) >= count:
        raise UsageError(f"invalid --shard {text!r}: index {index_text!r} is not in 0..{count - 1}", hint=hint)
    return Shard(int(index_text), count)


def select_jobs(jobs: Iterable[Job], shard: Shard | None) -> list[Job]:
    return list(jobs) if shard is None else [j for j in jobs if shard.owns(j.source_repository)]


def select_expected(expected: list[Expected], shard: Shard | None) -> list[Expected]:
    return expected if shard is None else [e for e in expected if shard.owns(e.source_repository)]


def select_sync_plan(plan: SyncPlan, shard: Shard | None) -> SyncPlan:
    """A sync's jobs, and the rules that could not list their repository, narrowed to the shard."""
    if shard is None:
        return plan
    refused = [rec for rec in plan.refused if shard.owns(parse_repository(rec.source).repository)]
    return SyncPlan(select_jobs(plan.jobs, shard), refused)


def select_plan(plan: MigrationPlan, shard: Shard | None) -> MigrationPlan:
    """The plan narrowed to the shard's repositories. Projects stay whole: every shard creates the
    projects it is given (creation is idempotent), so an empty project is created too."""
    if shard is None:
        return plan
    plan.images = select_jobs(plan.images, shard)
    plan.accessories = select_jobs(plan.accessories, shard)
    plan.expected = select_expected(plan.expected, shard)
    plan.repositories = {p: [r for r in repos if shard.owns(r)] for p, repos in plan.repositories.items()}
    return plan
