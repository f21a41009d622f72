"""ferry.pushorder: within a repository, pushes happen in job order whatever the transfers take."""

from __future__ import annotations

import asyncio
import random

from ferry.plan.model import Job
from ferry.pushorder import PushOrder
from ferry.refs import RegistryRef


def test_pushes_follow_job_order_per_repository_while_repositories_interleave() -> None:
    jobs = [Job(RegistryRef("src", f"p/r{i % 3}", tag=f"t{i}"), RegistryRef("dst", f"p/r{i % 3}", tag=f"t{i}"))
            for i in range(30)]
    order = PushOrder(jobs)
    pushed: list[Job] = []
    rng = random.Random(7)
    delays = {j.key: rng.random() / 100 for j in jobs}

    async def one(job: Job) -> None:
        await asyncio.sleep(delays[job.key])  # the blobs: any order
        await order.turn(job)
        pushed.append(job)
        order.finished(job)

    async def main() -> None:
        await asyncio.gather(*(one(j) for j in jobs))

    asyncio.run(main())
    for repo in ("p/r0", "p/r1", "p/r2"):
        assert [j for j in pushed if j.destination.repository == repo] == \
            [j for j in jobs if j.destination.repository == repo]
    assert pushed != jobs  # repositories did not wait for each other
