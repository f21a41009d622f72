"""Harbor's query conventions: the ``q`` filter syntax, typed parameters as go-swagger validates
them, sorting, and paging with ``X-Total-Count`` and ``Link``."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tests.support.harbor.common import HarborError


def parse_q(q: str | None) -> dict[str, tuple[str, Any]]:
    """Harbor's ``q`` syntax: ``k=v`` (exact), ``k=~v`` (fuzzy), ``k=[a~b]`` (range),
    ``k={a b}`` (or-list), ``k=(a b)`` (and-list), separated by commas."""
    out: dict[str, tuple[str, Any]] = {}
    if not q:
        return out
    for part in q.split(","):
        part = part.strip()
        if not part:
            continue
        key, sep, value = part.partition("=")
        key = key.strip()
        if not sep or not key:
            raise HarborError(400, f"invalid query string: {part}")
        if value.startswith("~"):
            out[key] = ("fuzzy", value[1:].strip("'\""))
        elif value.startswith("[") and value.endswith("]"):
            lo, _, hi = value[1:-1].partition("~")
            out[key] = ("range", (lo.strip("'\" "), hi.strip("'\" ")))
        elif value.startswith("{") and value.endswith("}"):
            out[key] = ("or", [v.strip("'\"") for v in value[1:-1].split()])
        elif value.startswith("(") and value.endswith(")"):
            out[key] = ("and", [v.strip("'\"") for v in value[1:-1].split()])
        else:
            out[key] = ("exact", value.strip("'\""))
    return out


def match(cond: tuple[str, Any], value: Any) -> bool:
    kind, want = cond
    s = str(value).lower() if isinstance(value, bool) else str(value)
    if kind == "exact":
        return s == want
    if kind == "fuzzy":
        return want in s
    if kind == "or":
        return s in want
    if kind == "range":
        lo, hi = want
        return (not lo or s >= lo) and (not hi or s <= hi)
    return s in want  # and-list on a scalar: membership


def bool_param(request: web.Request, name: str, default: bool) -> bool:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in ("true", "1", "t"):
        return True
    if raw.lower() in ("false", "0", "f"):
        return False
    raise HarborError(422, f'{name} in query must be of type boolean: "{raw}"')


def int_param(request: web.Request, name: str, default: int) -> int:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise HarborError(422, f'{name} in query must be of type int64: "{raw}"') from None


def paging(request: web.Request) -> tuple[int, int]:
    """``page`` and ``page_size`` as go-swagger validates them before Harbor's handler runs."""
    page = int_param(request, "page", 1)
    size = int_param(request, "page_size", 10)
    if size > 100:
        raise HarborError(422, "page_size in query should be less than or equal to 100")
    return max(page, 1), size


def link_header(request: web.Request, total: int, page: int, size: int) -> str:
    """Harbor's ``Links`` (src/server/v2.0/handler/base.go): the request URL with ``page`` and
    ``page_size`` set, query keys sorted (Go's ``url.Values.Encode``) and then unescaped."""
    if size <= 0:
        return ""
    path = request.raw_path.split("?", 1)[0]

    def url(p: int) -> str:
        params: dict[str, list[str]] = {}
        for k, v in request.query.items():
            params.setdefault(k, []).append(v)
        params["page"] = [str(p)]
        params["page_size"] = [str(size)]
        query = "&".join(f"{k}={v}" for k in sorted(params) for v in params[k])
        return f"{path}?{query}"

    links = []
    if page > 1 and (page - 1) * size < total:
        links.append(f'<{url(page - 1)}>; rel="prev"')
    if size * page < total:
        links.append(f'<{url(page + 1)}>; rel="next"')
    return " , ".join(links)


def page(request: web.Request, items: list[Any]) -> tuple[list[Any], dict[str, str]]:
    page, size = paging(request)
    total = len(items)
    chosen = items if size <= 0 else items[(page - 1) * size : page * size]
    headers = {"X-Total-Count": str(total)}
    link = link_header(request, total, page, size)
    if link:
        headers["Link"] = link
    return chosen, headers


def sort_key(sort: str | None, default: list[tuple[str, bool]]) -> list[tuple[str, bool]]:
    """``sort=field1,-field2`` → [(field, descending)]."""
    if not sort:
        return default
    keys = []
    for part in sort.split(","):
        part = part.strip()
        if part:
            keys.append((part.lstrip("-"), part.startswith("-")))
    return keys or default


def sorted_rows(rows: list[dict[str, Any]], keys: list[tuple[str, bool]]) -> list[dict[str, Any]]:
    for k, desc in reversed(keys):
        rows = sorted(rows, key=lambda r, k=k: (r.get(k) is None, 0 if r.get(k) is None else r.get(k)), reverse=desc)
    return rows


