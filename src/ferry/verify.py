"""After a copy, or alone (``ferry verify``): every selected source tag and digest must be present
at the destination with the same digest."""

from __future__ import annotations

from dataclasses import dataclass

from ferry.concurrency import bounded_map
from ferry.connect import Connections
from ferry.errors import FerryError
from ferry.plan.model import Expected
from ferry.refs import RegistryRef


@dataclass(frozen=True, slots=True)
class Mismatch:
    source: str
    destination: str
    expected: str | None
    actual: str | None  # None: missing at the destination
    project: str
    error: str | None = None

    @property
    def reason(self) -> str:
        if self.error:
            return self.error
        return "missing at the destination" if self.actual is None else f"has {self.actual}, expected {self.expected}"


async def verify(conns: Connections, expected: list[Expected], concurrency: int = 16) -> list[Mismatch]:
    async def check(e: Expected) -> Mismatch | None:
        try:
            want = e.digest
            if want is None and isinstance(e.source, RegistryRef):
                want = await conns.repository(e.source).has_manifest(e.source.reference)
            have = await conns.repository(e.destination).has_manifest(e.destination.reference)
        except FerryError as err:
            return Mismatch(str(e.source), str(e.destination), e.digest, None, e.project, str(err))
        if want is None or have != want:
            return Mismatch(str(e.source), str(e.destination), want, have, e.project,
                            None if want else "gone from the source")
        return None

    results = await bounded_map(check, expected, concurrency)
    return [m for m in results if m is not None]
