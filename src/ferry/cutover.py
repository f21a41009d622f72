"""``ferry migrate --cutover``: the final switch in one command.

Before anything else the source must be a Harbor whose user may change the system setting
``read_only`` (administrators only). Then the source is put in read-only mode, so nothing changes
under the final pass; the final incremental pass runs with its verification. On success the source
stays read-only and the run says where clients go now. On any failure (an image failed, a tag not
verified, a pre-flight finding, an error) and on SIGINT/SIGTERM the source gets its previous mode back,
unless ``--keep-read-only``; a signal then ends the run with exit 7.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

from ferry.errors import AuthError, FerryError, Interrupted, UsageError
from ferry.harbor.client import HarborAPI
from ferry.harbor.system import configurations, read_only_item, set_read_only
from ferry.migration import Endpoint, MigrationOptions, MigrationOutcome, connections_for


@dataclass(frozen=True, slots=True)
class Switch:
    """Where one project's clients pull from now."""

    source: str  # host/project
    destination: str

    def to_json(self) -> dict[str, str]:
        return {"from": self.source, "to": self.destination}


def switches(outcome: MigrationOutcome) -> list[Switch]:
    return [Switch(f"{outcome.source.host}/{p.name}", f"{outcome.destination.host}/{p.destination}")
            for p in outcome.projects]


def refuse_combinations(options: MigrationOptions, *, watch: bool) -> None:
    """Options a cutover cannot honour, refused before any request."""
    if watch:
        raise UsageError("--cutover is the final pass and --watch repeats passes", hint="run --watch first, then "
                         "ferry migrate --cutover once")
    if options.shard is not None:
        raise UsageError("--cutover needs the whole source, not one shard", hint="run the shards, then one "
                         "ferry migrate --cutover without --shard")
    if not options.images:
        raise UsageError("--cutover copies and verifies the images; --config-only copies none")


@contextlib.contextmanager
def cancel_on_signals(task: asyncio.Task[Any]) -> Iterator[list[int]]:
    """SIGINT and SIGTERM cancel ``task`` (once: a second signal does not cut the restore short);
    the signals received are listed in the yielded list."""
    loop = asyncio.get_running_loop()
    received: list[int] = []

    def on_signal(sig: int) -> None:
        if not received:
            task.cancel()
        received.append(sig)

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal, sig)
    try:
        yield received
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


class Cutover:
    def __init__(self, options: MigrationOptions, *, keep_read_only: bool, say: Callable[[str], None]) -> None:
        self.src = Endpoint.parse(options.source.url, "source")
        self.conns = connections_for(options, {self.src.host: options.source.access(self.src)})
        self.api = HarborAPI(self.conns.client(self.src.host).http)
        self.keep_read_only = keep_read_only
        self.say = say
        self.was_read_only = False

    async def close(self) -> None:
        await self.conns.close()

    async def check(self) -> bool:
        """A Harbor source whose user may set ``read_only``; its current mode."""
        if not await self.api.is_harbor():
            raise UsageError(f"--cutover puts the source Harbor in read-only mode, and {self.src.host} is not a "
                             "Harbor", hint="stop the pushes to that registry yourself, then rerun without --cutover")
        user = await self.api.check_credentials("source")
        who = f"user {user.username!r}" if user else "an anonymous caller"
        if user is None or not user.sysadmin:
            raise AuthError(f"source Harbor {self.src.host}: {who} is not a Harbor administrator and may not set "
                            "the system setting read_only", hint="use an administrator account for --cutover")
        value, editable = read_only_item(await configurations(self.api, who=who), self.src.host)
        if not editable:
            raise UsageError(f"source Harbor {self.src.host}: the system setting read_only is not editable",
                             hint="it is set in Harbor's configuration file or environment; change it there")
        self.was_read_only = value
        return value

    async def run(self, final_pass: Callable[[], Awaitable[MigrationOutcome]], *, dry_run: bool) -> MigrationOutcome:
        was = await self.check()
        mode = "read-only already" if was else "writable"
        if dry_run:
            self.say(f"cutover (dry run): would put source Harbor {self.src.host} in read-only mode (now {mode}), "
                     "run the final pass and verify it; nothing changed")
            return await final_pass()
        task = asyncio.current_task()
        assert task is not None
        with cancel_on_signals(task) as received:
            try:
                if not was:
                    await set_read_only(self.api, True)
                self.say(f"cutover: source Harbor {self.src.host} is read-only (was {mode}); final pass")
                return await final_pass()
            except BaseException:  # a failed pass, a signal, --command-timeout, a bug: the mode goes back
                await self._restore()
                if received:
                    task.uncancel()
                    raise Interrupted(f"cutover interrupted by {signal.Signals(received[0]).name}") from None
                raise

    async def _restore(self) -> None:
        if self.keep_read_only or self.was_read_only:
            self.say(f"cutover failed: source Harbor {self.src.host} left read-only"
                     + (" (--keep-read-only)" if self.keep_read_only and not self.was_read_only else ""))
            return
        try:
            await set_read_only(self.api, False)
        except FerryError as e:
            self.say(f"cutover failed and source Harbor {self.src.host} is STILL READ-ONLY: {e} "
                     "(an administrator turns it off: Configuration → System Settings → Repository Read Only)")
            return
        self.say(f"cutover failed: source Harbor {self.src.host} is writable again")
