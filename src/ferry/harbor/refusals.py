"""Why a Harbor refused an image, from the error it answered (read in Harbor's source):

- quota: ``403 DENIED`` "Quota exceeded when processing the request of adding … will exceed the
  configured upper limit of …" (controller/quota, on the blob upload or the manifest push);
- immutable: ``412 PRECONDITION`` "Failed to process request due to '<repo>:<tag>' configured as
  immutable." (middleware/immutable, a push to an existing protected tag);
- read-only: ``403 DENIED`` "The system is in read only mode. Any modification is prohibited.";
- policy: ``412 PROJECTPOLICYVIOLATION`` (content trust: "The image is not signed …"; vulnerability
  prevention: "current image with … cannot be pulled due to configured policy …"), refused on pull.

Harbor's ``DENIED`` also comes back for other reasons, so the message decides, not the code alone.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Cause:
    key: str  # what the JSON report groups by
    title: str  # the summary's heading
    fix: str


QUOTA = Cause("quota", "refused by a project quota", "raise the destination project's quota or free space there")
IMMUTABLE = Cause("immutable", "refused by an immutable tag rule",
                  "disable the destination's immutable rule for the migration, or leave the tag out (--exclude-tag)")
READ_ONLY = Cause("read-only", "refused: Harbor is in read-only mode",
                  "turn read-only mode off (Configuration → System Settings)")
POLICY = Cause("policy", "refused by a project policy (content trust, vulnerability prevention)",
               "sign the image, allow its CVEs, or turn the project's policy off while migrating")
CAUSES = (QUOTA, IMMUTABLE, READ_ONLY, POLICY)


def classify(error: str | None) -> Cause | None:
    """The Harbor refusal behind a job's error line, or None for any other failure."""
    if not error:
        return None
    if "read only mode" in error:
        return READ_ONLY
    if "exceed the configured upper limit" in error or "Quota exceeded" in error:
        return QUOTA
    if "configured as immutable" in error:
        return IMMUTABLE
    if "PROJECTPOLICYVIOLATION" in error:
        return POLICY
    return None
