"""A Harbor API v2.0 test server in front of a real ``docker-registry`` (CNCF distribution 2.8).

Harbor itself cannot run here, so this fixture plays its part wherever a migration tool depends on
it. One aiohttp server on ``127.0.0.1:<port>`` serves

- Harbor's REST API under ``/api/v2.0/…`` (projects, repositories, artifacts with tags, references
  and accessories, users/current, systeminfo, ping, quotas), and the configuration a migration
  moves (issue 10): project metadata and CVE allowlists, members (users and groups), users, user
  groups, ``/configurations`` (auth_mode, read_only, project_creation_restriction), robot
  accounts, retention policies, immutable tag rules, labels and the artifacts carrying them,
  webhook policies, repository descriptions, the system CVE allowlist — with Harbor's pagination (``page``,
  ``page_size`` ≤ 100 else 422, ``X-Total-Count``, ``Link: <…>; rel="prev" , <…>; rel="next"``),
  its visibility rules (private projects answer 401/403, never leak), its double-encoded
  repository names and its JSON shapes (go-swagger: empty arrays are ``null``, zero times are
  ``0001-01-01T00:00:00.000Z``);
- Harbor's token service ``GET /service/token`` (denied actions are dropped silently);
- the registry API ``/v2/…``, reverse-proxied (streaming both ways) to a ``docker-registry``
  configured for token auth with realm ``<this server>/service/token`` and service
  ``harbor-registry``. Basic credentials on ``/v2/`` are accepted too, as Harbor does, and
  ``/v2/<name>/referrers/<digest>`` is answered from the accessories (Harbor ≥ 2.8).

The server is a package split as go-containerregistry's ``pkg/registry`` is: ``server`` (state,
lifecycle, the front door), ``routes`` (the routing table), one module per resource kind
(``system``, ``projects``, ``repositories``, ``artifacts``, ``quotas``, ``metadata``, ``members``,
``users``, ``robots``, ``retention``, ``immutable``, ``labels``, ``webhooks``, ``allowlist``),
``rbac`` (what each role and robot permission allows), ``tokens``, ``proxy``, ``storage`` (the
inventory read from disk), ``query`` (paging and filters), ``client`` (seeding).

Robots log in with Basic ``robot$…:<secret>`` on the API, the token service and ``/v2/``, and get
exactly their permissions (a wrong secret, a disabled or expired robot is anonymous). While
``read_only`` is set every write (API and ``/v2/``) but ``PUT /configurations`` is ``403 DENIED``
(Harbor's readonly middleware, before any permission check); a push to an existing tag an immutable
rule protects is ``412 PRECONDITION``; a manifest push over the project's quota is ``403 DENIED``
"Quota exceeded …" (``quotas``), and in a project requiring cosign signatures the pull of an unsigned
manifest is ``412 PROJECTPOLICYVIOLATION`` (``contenttrust``). ``/projects/{p}/summary`` carries the
quota for members.

The artifact inventory is not bookkept: every API call reads the registry's storage directory
(``docker/registry/v2/repositories/<name>/_manifests/{tags,revisions}``, manifests from the blob
store), so whatever is pushed through ``/v2/`` shows up. Users, projects, memberships and quotas
live in memory and are seeded through the Python API (:meth:`HarborServer.add_user`,
:meth:`HarborServer.create_project`, :meth:`HarborServer.add_member`, ``add_group``,
``add_group_member``, ``add_robot``, ``add_label``, ``attach_label``, ``set_retention``,
``add_immutable_rule``, ``add_webhook``), or through the API itself.

Behaviour read in Harbor's source (``src/server/v2.0/handler``, ``src/core/service/token``,
``src/server/middleware/cosign``, ``src/pkg/artifact/dao``) is noted where it is not obvious.
"""

from tests.support.harbor.client import HarborPushError, V2Client, iter_pages
from tests.support.harbor.common import ADMIN_PASSWORD, API, ROLES, HarborError
from tests.support.harbor.model import HarborGroup, HarborProject, HarborRobot, HarborUser, RequestRecord
from tests.support.harbor.server import HarborServer

__all__ = [
    "ADMIN_PASSWORD",
    "API",
    "ROLES",
    "HarborError",
    "HarborGroup",
    "HarborProject",
    "HarborPushError",
    "HarborRobot",
    "HarborServer",
    "HarborUser",
    "RequestRecord",
    "V2Client",
    "iter_pages",
]
