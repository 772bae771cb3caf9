"""Loopback servers and a fake DNS for the fetch tests (a uniquely named module: conftest is not importable).

Only loopback is ever contacted: the "recorder" listens on 127.0.0.2 (loopback, but outside the test
allowlist) and counts every request that reaches it; allowed origins listen on 127.0.0.1 and 127.0.0.3.
Host names are answered by a fake DNS, never by the system resolver.
"""

from __future__ import annotations

import asyncio
import socket
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from ipaddress import ip_address

from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult

BODY_SECRET = "secret-origin-body-7f3a"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@dataclass
class Server:
    host: str
    port: int
    requests: list[web.Request] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)

    def url(self, path: str = "/") -> str:
        return f"http://{self.host}:{self.port}{path}"


class FakeDNS(AbstractResolver):
    """Answers from a table: name -> addresses, or name -> a list of answers, one per call (rebinding)."""

    def __init__(self, table: Mapping[str, list[str]], sequence: Mapping[str, list[list[str]]] | None = None):
        self.table = dict(table)
        self.sequence = {name: list(answers) for name, answers in (sequence or {}).items()}
        self.calls: list[str] = []

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.calls.append(host)
        name = host.rstrip(".")
        answers = self.sequence.get(name)
        addresses = (answers.pop(0) if len(answers) > 1 else answers[0]) if answers else self.table.get(name)
        if not addresses:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [
            ResolveResult(
                hostname=host,
                host=a,
                port=port,
                family=socket.AF_INET if ip_address(a).version == 4 else socket.AF_INET6,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
            for a in addresses
        ]

    async def close(self) -> None:
        pass


class SlowDNS(AbstractResolver):
    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        await asyncio.sleep(30)
        raise AssertionError("unreachable")

    async def close(self) -> None:
        pass


_BOMB: list[bytes] = []


def gzip_bomb() -> bytes:
    """64 MiB of zeros, gzip-compressed to about 64 KiB."""
    if not _BOMB:
        compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
        zeros = bytes(1 << 20)
        _BOMB.append(b"".join([compressor.compress(zeros) for _ in range(64)] + [compressor.flush()]))
    return _BOMB[0]


def origin_app(server: Server) -> web.Application:
    async def record(request: web.Request) -> None:
        server.requests.append(request)
        server.bodies.append(await request.read())

    async def image(request: web.Request) -> web.StreamResponse:
        await record(request)
        return web.Response(body=PNG, content_type="image/png")

    async def echo(request: web.Request) -> web.StreamResponse:
        await record(request)
        return web.json_response(dict(request.headers))

    async def redirect(request: web.Request) -> web.StreamResponse:
        await record(request)
        status = int(request.query.get("status", "302"))
        return web.Response(status=status, headers={"Location": request.query["to"]})

    async def chain(request: web.Request) -> web.StreamResponse:
        await record(request)
        n = int(request.match_info["n"])
        final = request.query.get("final")
        if n > 0:
            suffix = f"?final={final}" if final else ""
            return web.Response(status=302, headers={"Location": f"/chain/{n - 1}{suffix}"})
        if final:
            return web.Response(status=302, headers={"Location": final})
        return web.Response(body=b"end of chain", content_type="text/plain")

    async def status(request: web.Request) -> web.StreamResponse:
        await record(request)
        return web.Response(status=int(request.match_info["code"]), text=BODY_SECRET, reason=BODY_SECRET)

    async def loop(request: web.Request) -> web.StreamResponse:
        await record(request)
        return web.Response(status=302, headers={"Location": "/loop"})

    async def no_location(request: web.Request) -> web.StreamResponse:
        await record(request)
        return web.Response(status=302)

    async def slow(request: web.Request) -> web.StreamResponse:
        await record(request)
        await asyncio.sleep(float(request.query.get("delay", "10")))
        return web.Response(body=PNG)

    async def trickle(request: web.Request) -> web.StreamResponse:
        await record(request)
        response = web.StreamResponse()
        await response.prepare(request)
        for _ in range(1000):
            await response.write(b"x")
            await asyncio.sleep(0.05)
        return response

    async def big(request: web.Request) -> web.StreamResponse:
        await record(request)
        size = int(request.query["n"])
        if request.query.get("cl") == "1":
            return web.Response(body=b"x" * size)
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        sent = 0
        while sent < size:
            piece = min(65536, size - sent)
            await response.write(b"x" * piece)
            sent += piece
        return response

    async def lying_length(request: web.Request) -> web.StreamResponse:
        await record(request)
        return web.Response(body=b"x", headers={"Content-Length": str(10**12)})

    async def bomb(request: web.Request) -> web.StreamResponse:
        await record(request)
        headers = {"Content-Encoding": "gzip", "Content-Type": "image/png"}
        return web.Response(body=gzip_bomb(), headers=headers)

    async def small_gzip(request: web.Request) -> web.StreamResponse:
        await record(request)
        compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
        body = compressor.compress(PNG) + compressor.flush()
        return web.Response(body=body, headers={"Content-Encoding": "gzip"})

    async def set_cookie(request: web.Request) -> web.StreamResponse:
        await record(request)
        response = web.Response(body=PNG)
        response.set_cookie("session", "tenant-a-secret")
        return response

    async def post(request: web.Request) -> web.StreamResponse:
        await record(request)
        code = int(request.query.get("status", "202"))
        headers = {"Retry-After": "120"}
        if "to" in request.query:
            headers["Location"] = request.query["to"]
        return web.Response(status=code, text="accepted\n" + "y" * 2000, headers=headers)

    app = web.Application()
    app.router.add_get("/image", image)
    app.router.add_get("/echo", echo)
    app.router.add_get("/redirect", redirect)
    app.router.add_get("/chain/{n}", chain)
    app.router.add_get("/status/{code}", status)
    app.router.add_get("/no-location", no_location)
    app.router.add_get("/loop", loop)
    app.router.add_route("*", "/slow", slow)
    app.router.add_get("/trickle", trickle)
    app.router.add_get("/big", big)
    app.router.add_get("/lying-length", lying_length)
    app.router.add_get("/bomb", bomb)
    app.router.add_get("/small-gzip", small_gzip)
    app.router.add_get("/set-cookie", set_cookie)
    app.router.add_post("/post", post)
    return app


def recorder_app(server: Server) -> web.Application:
    async def anything(request: web.Request) -> web.StreamResponse:
        server.requests.append(request)
        return web.Response(text="recorded")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", anything)
    return app


async def start_server(
    host: str, make_app: Callable[[Server], web.Application], port: int = 0
) -> tuple[Server, web.AppRunner]:
    server = Server(host=host, port=port)
    runner = web.AppRunner(make_app(server), handler_cancellation=True, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    assert site._server is not None
    server.port = site._server.sockets[0].getsockname()[1]
    return server, runner
