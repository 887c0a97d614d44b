"""What every live attack gets and gives back: `AttackContext` in, `AttackResult` out.

An attack module (tests/security/attacks_<area>.py) defines functions
`def attack_<name>(base_url: str, ctx: AttackContext) -> AttackResult` (or a list of results, one
per attempt); `python -m tests.security.attack URL` runs them against a live server. An attack
is *blocked* when the system refused what the attacker tried, *accepted* when it got through.
Each attack gets its own context (its own HTTP session, no cookies or tokens from another).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import requests

API = "/api/v1"


@dataclass(frozen=True)
class AttackResult:
    """One attempt: what was tried, the HTTP status (0: nothing was sent), the short answer."""

    name: str
    attempt: str
    status: int
    answer: str
    blocked: bool

    def render(self) -> str:
        verdict = "BLOCKED " if self.blocked else "ACCEPTED"
        answer = " ".join(self.answer.split())
        if len(answer) > 120:
            answer = answer[:117] + "..."
        return f"{verdict} {self.name}: {self.attempt} -> {self.status} {answer}"


def short_answer(resp: requests.Response) -> str:
    """The error code of an API envelope, else the start of the body."""
    try:
        body: Any = resp.json()
    except ValueError:
        return resp.text[:100]
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict) and err.get("code"):
            return str(err["code"])
        return ", ".join(sorted(body)[:6])
    return str(body)[:100]


@dataclass
class AttackContext:
    """A fresh HTTP session to the server under attack and a way to sign in."""

    base_url: str
    verify: bool | str = True
    timeout: float = 10.0
    session: requests.Session = field(default_factory=requests.Session)

    def __post_init__(self) -> None:
        self.base_url = self.base_url.rstrip("/")
        self.session.trust_env = False  # no proxy from the environment between us and the target
        self.session.verify = self.verify

    def url(self, path: str) -> str:
        """`path` under the API root (`/auth/login` -> URL/api/v1/auth/login); absolute kept."""
        if path.startswith(("http://", "https://")):
            return path
        return f"{self.base_url}{API}{path}" if not path.startswith(API) else self.base_url + path

    def request(self, method: str, path: str, *, token: str | None = None,
                **kw: Any) -> requests.Response:
        headers = dict(kw.pop("headers", None) or {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return self.session.request(method, self.url(path), headers=headers,
                                    timeout=kw.pop("timeout", self.timeout), **kw)

    def login(self, staff_no: str, password: str, window_no: int | None = None) -> str:
        """Sign in; the access token. Raises `requests.HTTPError` if refused."""
        body: dict[str, Any] = {"staff_no": staff_no, "password": password}
        if window_no is not None:
            body["window_no"] = window_no
        resp = self.request("POST", "/auth/login", json=body)
        resp.raise_for_status()
        return str(resp.json()["access_token"])

    def close(self) -> None:
        self.session.close()


class RecordingProxy:
    """A forward HTTP proxy on loopback that sends every request to `target` and keeps it."""

    def __init__(self, target: str, verify: bool | str = True) -> None:
        self.seen: list[tuple[str, str, bytes]] = []
        seen = self.seen
        base = target.rstrip("/")

        class Handler(BaseHTTPRequestHandler):
            def _forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                seen.append((self.command, self.path, body))
                if self.command == "CONNECT":
                    self.send_error(502)
                    return
                parts = urlsplit(self.path)
                url = base + parts.path + (f"?{parts.query}" if parts.query else "")
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in ("host", "proxy-connection", "content-length")}
                r = requests.request(self.command, url, data=body, headers=headers, timeout=10,
                                     verify=verify)
                self.send_response(r.status_code)
                for k, v in r.headers.items():
                    if k.lower() not in ("transfer-encoding", "connection", "content-length",
                                         "content-encoding"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(r.content)))
                self.end_headers()
                self.wfile.write(r.content)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_CONNECT = _forward

            def log_message(self, *a: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
