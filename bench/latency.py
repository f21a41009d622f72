"""A loopback reverse proxy that holds every request for one round trip before passing it on, so a
registry on 127.0.0.1 answers as if it were far away (this kernel has no netem: field notes).

    python -m bench.latency --upstream 127.0.0.1:5000 --rtt-ms 80

prints ``listening HOST:PORT`` once it accepts connections. Bodies stream through both ways
unchanged; the ``Host`` header is passed on, so the registry's upload ``Location`` points back at the
proxy. Only the per-request round trip is modelled: no bandwidth limit, no extra round trip for a
new connection (a client that reuses connections and one that does not look alike here).
With ``--log FILE`` each request is written there once answered: ``START END METHOD PATH`` (wall
clock seconds, from its arrival to the end of its answer), which ``bench.cases`` reads to count the
round trips on a run's critical path.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from typing import TextIO

from aiohttp import ClientSession, ClientTimeout, TCPConnector, web

#: Headers about one hop's connection, not the request: never passed on.
HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade"}
)


def _end_to_end(headers: object) -> list[tuple[str, str]]:
    return [(k, v) for k, v in headers.items() if k.lower() not in HOP_BY_HOP]  # type: ignore[attr-defined]


def make_app(upstream: str, rtt: float, log: TextIO | None = None) -> web.Application:
    """The proxy: each request waits ``rtt`` seconds, then goes to ``http://upstream`` as it came."""

    async def open_session(app: web.Application) -> None:
        app["session"] = ClientSession(
            connector=TCPConnector(limit=0), timeout=ClientTimeout(total=None), auto_decompress=False
        )

    async def close_session(app: web.Application) -> None:
        await app["session"].close()

    async def forward(request: web.Request) -> web.StreamResponse:
        start = time.time()
        await asyncio.sleep(rtt)
        session: ClientSession = request.app["session"]
        async with session.request(
            request.method,
            f"http://{upstream}{request.rel_url}",
            headers=_end_to_end(request.headers),
            data=request.content if request.body_exists else None,
            allow_redirects=False,
        ) as answer:
            response = web.StreamResponse(status=answer.status, reason=answer.reason)
            response.headers.extend(_end_to_end(answer.headers))
            await response.prepare(request)
            async for chunk in answer.content.iter_chunked(1 << 16):
                await response.write(chunk)
            await response.write_eof()
        if log is not None:
            log.write(f"{start:.6f} {time.time():.6f} {request.method} {request.rel_url.path}\n")
            log.flush()
        return response

    app = web.Application(client_max_size=0)
    app.on_startup.append(open_session)
    app.on_cleanup.append(close_session)
    app.router.add_route("*", "/{tail:.*}", forward)
    return app


async def serve(upstream: str, rtt: float, port: int, log: TextIO | None = None) -> None:
    runner = web.AppRunner(make_app(upstream, rtt, log), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    host, bound = site._server.sockets[0].getsockname()[:2]  # type: ignore[union-attr]
    print(f"listening {host}:{bound}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.latency", description=__doc__.split("\n\n")[0])
    p.add_argument("--upstream", required=True, help="HOST:PORT of the registry (plain HTTP, loopback)")
    p.add_argument("--rtt-ms", type=float, required=True, help="round trip added to every request, in ms")
    p.add_argument("--port", type=int, default=0, help="port to listen on, 127.0.0.1 (default: any free one)")
    p.add_argument("--log", help="append one line per answered request here: START END METHOD PATH")
    args = p.parse_args(argv)
    if not args.upstream.startswith("127."):
        p.error("--upstream must be a loopback address (127.0.0.0/8)")
    log = open(args.log, "a") if args.log else None  # noqa: SIM115 (open until the process ends)
    asyncio.run(serve(args.upstream, args.rtt_ms / 1000, args.port, log))  # until SIGTERM
    return 0


if __name__ == "__main__":
    sys.exit(main())
