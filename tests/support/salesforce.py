"""A local stand-in for a Salesforce org: the OAuth token endpoint and the Attachment / ContentVersion
REST resources, with access tokens that expire (401) until refreshed."""

from __future__ import annotations

import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeSalesforce:
    def __init__(self, client_id: str, client_secret: str, refresh_token: str) -> None:
        self.files: dict[str, bytes] = {}
        self.valid_tokens: set[str] = set()
        self.refreshes = 0
        self.downloads: list[tuple[str, str]] = []  # (path, authorization)
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_args: object) -> None:
                pass

            def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                form = urllib.parse.parse_qs(self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode())
                ok = (form.get("grant_type") == ["refresh_token"] and form.get("client_id") == [client_id]
                      and form.get("client_secret") == [client_secret] and form.get("refresh_token") == [refresh_token])
                if self.path != "/services/oauth2/token" or not ok:
                    self._send(400, b'{"error":"invalid_grant"}')
                    return
                fake.refreshes += 1
                token = f"access-{fake.refreshes}"
                fake.valid_tokens.add(token)
                self._send(200, json.dumps({"access_token": token, "token_type": "Bearer"}).encode())

            def do_GET(self) -> None:
                authorization = self.headers.get("Authorization", "")
                fake.downloads.append((self.path, authorization))
                if authorization.removeprefix("Bearer ") not in fake.valid_tokens:
                    self._send(401, b'[{"errorCode":"INVALID_SESSION_ID"}]')
                    return
                parts = self.path.split("/")
                # /services/data/vXX.X/sobjects/{Attachment|ContentVersion}/{id}/{Body|VersionData}
                if len(parts) == 8 and parts[4] == "sobjects" and (parts[5], parts[7]) in (
                        ("Attachment", "Body"), ("ContentVersion", "VersionData")) and parts[6] in fake.files:
                    self._send(200, fake.files[parts[6]], "application/octet-stream")
                else:
                    self._send(404, b'[{"errorCode":"NOT_FOUND"}]')

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
