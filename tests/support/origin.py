"""A local HTTP origin for tests: serves what a test registers and records every request."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Route:
    body: bytes = b""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class Sequence:
    """Answers in turn; the last one repeats."""

    routes: list[Route]
    served: int = 0

    def next(self) -> Route:
        route = self.routes[min(self.served, len(self.routes) - 1)]
        self.served += 1
        return route


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class Origin:
    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.routes: dict[str, Route | Sequence] = {}
        self.requests: list[Recorded] = []
        self._lock = threading.Lock()
        origin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_args: object) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with origin._lock:
                    origin.requests.append(Recorded(self.command, self.path, dict(self.headers.items()), body))
                    found = origin.routes.get(self.path.split("?")[0])
                    route = found.next() if isinstance(found, Sequence) else found
                if route is None:
                    route = Route(b"not found", 404)
                if route.delay:
                    time.sleep(route.delay)
                self.send_response(route.status)
                for key, value in route.headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(route.body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(route.body)

            do_GET = do_POST = do_HEAD = _handle

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self.host = host
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def url(self, path: str) -> str:
        return f"http://{self.host}:{self.port}{path}"

    def serve(self, path: str, body: bytes, status: int = 200, delay: float = 0.0, **headers: str) -> str:
        self.routes[path] = Route(body, status, {k.replace("_", "-"): v for k, v in headers.items()}, delay)
        return self.url(path)

    def redirect(self, path: str, location: str, status: int = 302) -> str:
        self.routes[path] = Route(b"", status, {"Location": location})
        return self.url(path)

    def serve_sequence(self, path: str, *answers: tuple[int, bytes]) -> str:
        self.routes[path] = Sequence([Route(body, status) for status, body in answers])
        return self.url(path)

    def requests_to(self, path: str) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if r.path.split("?")[0] == path]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
