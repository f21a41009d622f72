"""``--registries.d DIR`` and copies: ferry verifies the simple signatures a lookaside holds where the
policy asks for them (``ferry.signed_by``) but does not copy them, and says so."""

from __future__ import annotations

import sys

from ferry.refs import ImageRef, RegistryRef


def warn_uncopied_signatures(registries_d: str | None, source: ImageRef) -> None:
    if registries_d is None or not isinstance(source, RegistryRef):
        return
    from ferry.lookaside import RegistriesD

    url = RegistriesD.load(registries_d).configured(source)
    if url:
        print(f"ferry: warning: {registries_d} puts signatures of {source.registry}/{source.repository} in a "
              f"lookaside ({url}); ferry copies the signatures kept in the registry (cosign tags, OCI referrers), "
              "not lookaside ones", file=sys.stderr)
