"""Fixtures that run the real reference hall server on loopback.

`start_server_thread` runs uvicorn in a thread of the test process (fast, shares nothing but
the socket); `start_server_process` runs `python -m hall_server` so a test can kill -9 it.
Fixtures: `hall_server` (module scope, seeded demo hall on a temp SQLite file),
`fresh_hall_server` (function scope), `pg_hall_server` (a fresh PostgreSQL database on
HALL_TEST_PG_URL; skipped when unset). Demo credentials: staff 1001..1012 / demo1234 (1001 at
window 1, ...), supervisor 8001, IT admin 9001.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

DEMO_PASSWORD = "demo1234"
REPO_ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RunningServer:
    url: str
    data_dir: Path
    db_url: str
    _server: Any
    _thread: threading.Thread

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(15)


def start_server_thread(
    db_url: str | None = None,
    data_dir: Path | None = None,
    demo: bool = True,
    **settings: Any,
) -> RunningServer:
    import uvicorn

    from hall_server.app import create_app
    from hall_server.settings import Settings

    if data_dir is None:
        import tempfile

        data_dir = Path(tempfile.mkdtemp(prefix="hall-"))
    cfg = Settings(data_dir=Path(data_dir), db_url=db_url, demo=demo, **settings)
    app = create_app(cfg)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on",
                       timeout_graceful_shutdown=2)
    )
    thread = threading.Thread(target=server.run, name=f"hall-server-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("hall server did not start")
        time.sleep(0.01)
    return RunningServer(f"http://127.0.0.1:{port}", Path(data_dir), cfg.database_url(), server, thread)


class ServerProcess:
    """`python -m hall_server` as a child process; `.url`, `.kill()`, `.terminate()`."""

    def __init__(self, proc: subprocess.Popen[bytes], url: str, log_path: Path) -> None:
        self.proc = proc
        self.url = url
        self.log_path = log_path
        self.pid = proc.pid

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(10)

    def terminate(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.kill()

    def poll(self) -> int | None:
        return self.proc.poll()

    def wait(self, timeout: float | None = None) -> int:
        return self.proc.wait(timeout)


def wait_healthy(url: str, timeout: float = 60, proc: subprocess.Popen[bytes] | None = None) -> None:
    import requests

    deadline = time.monotonic() + timeout
    with requests.Session() as s:
        s.trust_env = False
        while time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(f"hall server exited with {proc.returncode}")
            try:
                if s.get(url + "/api/v1/health", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.05)
    raise RuntimeError("hall server not healthy in time")


def start_server_process(
    data_dir: Path,
    port: int | None = None,
    db_url: str | None = None,
    demo: bool = True,
    extra_args: tuple[str, ...] | list[str] = (),
) -> ServerProcess:
    port = port or free_port()
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    args = [sys.executable, "-m", "hall_server", "serve", "--host", "127.0.0.1", "--port", str(port),
            "--data-dir", str(data_dir)]
    if db_url:
        args += ["--db", db_url]
    if demo:
        args.append("--demo")
    elif "--require-device" not in extra_args:
        args.append("--allow-unenrolled")  # a lab: tests sign in from PCs never enrolled
    args += list(extra_args)
    log_path = data_dir / f"server-{port}.log"
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, cwd=str(REPO_ROOT), env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc=proc)
    except Exception:
        proc.kill()
        raise RuntimeError("server failed to start; log:\n" + log_path.read_text(errors="replace")) from None
    return ServerProcess(proc, url, log_path)


def fresh_pg_url(base_url: str) -> str:
    """Create a new empty database on the server of `base_url`; return its URL."""
    import psycopg

    name = "hall_" + uuid.uuid4().hex[:12]
    dsn = base_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    head, _, _ = base_url.rpartition("/")
    return f"{head}/{name}"


def drop_pg_db(url: str) -> None:
    import psycopg

    head, _, name = url.rpartition("/")
    admin = head.replace("postgresql+psycopg://", "postgresql://") + "/postgres"
    try:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    except Exception:  # noqa: BLE001 - best effort cleanup
        pass


@pytest.fixture(scope="module")
def hall_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    srv = start_server_thread(data_dir=tmp_path_factory.mktemp("hall"), demo=True)
    yield srv
    srv.stop()


@pytest.fixture
def fresh_hall_server(tmp_path: Path) -> Iterator[RunningServer]:
    srv = start_server_thread(data_dir=tmp_path / "hall", demo=True)
    yield srv
    srv.stop()


@pytest.fixture
def pg_hall_server(tmp_path: Path) -> Iterator[RunningServer]:
    base = os.environ.get("HALL_TEST_PG_URL")
    if not base:
        pytest.skip("HALL_TEST_PG_URL not set")
    url = fresh_pg_url(base)
    srv = start_server_thread(db_url=url, data_dir=tmp_path / "hall", demo=True)
    yield srv
    srv.stop()
    drop_pg_db(url)


# ---- small HTTP helpers for server tests ---------------------------------------------------
class Api:
    """A requests session against a running server, optionally signed in."""

    def __init__(self, url: str, token: str | None = None) -> None:
        import requests

        self.url = url
        self.s = requests.Session()
        self.s.trust_env = False
        self.token = token
        self.login_body: dict[str, Any] | None = None

    def headers(self, key: str | None = None, extra: dict[str, str] | None = None) -> dict[str, str]:
        h: dict[str, str] = {}
        if self.token:
            h["Authorization"] = f"Bearer {self.token}"
        if key:
            h["Idempotency-Key"] = key
        if extra:
            h.update(extra)
        return h

    def get(self, path: str, **kw: Any) -> Any:
        return self.s.get(self.url + "/api/v1" + path, headers=self.headers(extra=kw.pop("headers", None)), timeout=30, **kw)

    def post(self, path: str, json: Any = None, key: str | None = None, **kw: Any) -> Any:
        return self.s.post(self.url + "/api/v1" + path, json=json,
                           headers=self.headers(key, kw.pop("headers", None)), timeout=30, **kw)

    def put(self, path: str, json: Any = None, key: str | None = None, **kw: Any) -> Any:
        return self.s.put(self.url + "/api/v1" + path, json=json,
                          headers=self.headers(key, kw.pop("headers", None)), timeout=30, **kw)

    def patch(self, path: str, json: Any = None, key: str | None = None, **kw: Any) -> Any:
        return self.s.patch(self.url + "/api/v1" + path, json=json,
                            headers=self.headers(key, kw.pop("headers", None)), timeout=30, **kw)

    def head(self, path: str, **kw: Any) -> Any:
        return self.s.head(self.url + "/api/v1" + path, headers=self.headers(extra=kw.pop("headers", None)), timeout=30, **kw)

    def close(self) -> None:
        self.s.close()


def signed_in(url: str, staff_no: str, window_no: int | None = None, password: str = DEMO_PASSWORD) -> Api:
    api = Api(url)
    body: dict[str, Any] = {"staff_no": staff_no, "password": password}
    if window_no is not None:
        body["window_no"] = window_no
    r = api.post("/auth/login", json=body)
    if r.status_code != 200:
        raise AssertionError(f"login {staff_no}@{window_no}: {r.status_code} {r.text}")
    api.token = r.json()["access_token"]
    api.login_body = r.json()
    return api


def start_app_thread(app: Any) -> tuple[str, Any, threading.Thread]:
    """Run an already built ASGI app (e.g. with a test-only router added) on loopback."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("server did not start")
        time.sleep(0.01)
    return f"http://127.0.0.1:{port}", server, thread


def stored_document(server: RunningServer, path: Path) -> bytes:
    """The plaintext of a document file the server keeps (sealed at rest, hall_server.documents),
    read with the running server's key: what the server holds, for tests to compare."""
    from sqlalchemy import create_engine, text

    from hall_server.documents import open_records

    eng = create_engine(server.db_url)
    try:
        with eng.connect() as c:
            upload_id = c.execute(text("SELECT upload_id FROM documents WHERE id = :i"), {"i": path.name}).scalar_one()
    finally:
        eng.dispose()
    key = server._server.config.app.state.hall.signer.documents_key
    return b"".join(open_records(key, str(upload_id), path, path.stat().st_size))
