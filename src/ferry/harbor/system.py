"""Harbor's system settings (``/configurations``): the ``read_only`` switch a cutover flips.

Harbor lets only system administrators read or change them (401 anonymous, 403 anyone else); while
``read_only`` is set its readonly middleware refuses every write, API and registry alike, with ``403
DENIED`` "The system is in read only mode. Any modification is prohibited." — all but the ``PUT
/configurations`` that turns it off again.
"""

from __future__ import annotations

from typing import Any

from ferry.errors import AuthError, ProtocolError
from ferry.harbor.client import HarborAPI


async def configurations(api: HarborAPI, *, who: str) -> dict[str, Any]:
    """The ``ConfigurationsResponse`` (item → ``{"value", "editable"}``); AuthError when ``who`` may
    not read them (not a Harbor administrator)."""
    answer = await api.get("/configurations", allow=(401, 403))
    if answer in (401, 403):
        raise AuthError(f"Harbor {api.host}: {who} is not a Harbor administrator and may not change the system "
                        "setting read_only", hint="use an administrator account for --cutover")
    if not isinstance(answer, dict):
        raise ProtocolError(f"{api.host}: Harbor API /configurations did not answer an object")
    return answer


def read_only_item(config: dict[str, Any], host: str) -> tuple[bool, bool]:
    """``read_only``'s (value, editable) in a ``ConfigurationsResponse``."""
    item = config.get("read_only")
    if not isinstance(item, dict) or not isinstance(item.get("value"), bool):
        raise ProtocolError(f"{host}: Harbor API /configurations has no boolean read_only")
    return item["value"], bool(item.get("editable", True))


async def set_read_only(api: HarborAPI, value: bool) -> None:
    await api.send("PUT", "/configurations", {"read_only": value}, ok=(200,),
                   what=f"Harbor system setting read_only={str(value).lower()}")


async def is_read_only(api: HarborAPI) -> bool:
    """What ``/systeminfo`` says (any authenticated caller sees ``read_only`` there)."""
    return (await api.systeminfo()).get("read_only") is True
