"""The demo: the reference hall server in-process on loopback, an arrival simulator and a second
simulated window, so the desk at window 1 has a moving queue to work with.

This module, in the composition root, is the only place outside hall_server that imports it (a
plain import statement; tests/test_layering.py keeps it so). It runs the server inside the same
process so a developer needs one command. The packaged desk ships without the server (the spec
excludes it): `counter-app demo` there gets a clear error instead.
"""

from __future__ import annotations

import logging
import random
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from api_client import HallClient
from counter_app.errors import ConfigError

if TYPE_CHECKING:
    import uvicorn

log = logging.getLogger(__name__)

DEMO_STAFF = ("1001", "demo1234")
DEMO_WINDOW = 1
SIM_STAFF = ("1002", "demo1234")
SIM_WINDOW = 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class DemoServer:
    url: str
    _server: uvicorn.Server
    _thread: threading.Thread

    def stop(self, timeout: float = 10.0) -> None:
        self._server.should_exit = True
        self._thread.join(timeout)


def start_demo_server(data_dir: Path, *, arrival_rate: float = 6.0, seed: int = 1,
                      port: int | None = None) -> DemoServer:
    """Start the reference server with the demo hall on 127.0.0.1 in a daemon thread."""
    try:
        import uvicorn

        from hall_server.app import create_app
        from hall_server.settings import Settings as ServerSettings
    except ImportError as exc:
        log.error("demo server unavailable: %r", exc)
        raise ConfigError(message_zh=f"此安装不包含演示服务器（{exc}）",
                          message_en=f"This installation has no demo server ({exc})",
                          code="no_demo_server") from exc
    data_dir.mkdir(parents=True, exist_ok=True)
    settings = ServerSettings(data_dir=data_dir, demo=True, demo_history=True, arrival_rate=arrival_rate, seed=seed)
    app = create_app(settings)
    port = port or _free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                            lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="demo-hall-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise ConfigError(message_zh="演示服务器未能启动", message_en="The demo server did not start",
                              code="demo_server_failed")
        time.sleep(0.02)
    url = f"http://127.0.0.1:{port}"
    log.info("demo hall server at %s", url)
    return DemoServer(url, server, thread)


def seed_queue(url: str, *, category: str = "A", normal: int = 6) -> int:
    """A morning queue for the demo desk: some waiting citizens, one green-channel, one due
    appointment, so the first F1 already shows the call order rules. Returns tickets issued."""
    from datetime import UTC, datetime

    issued = 0
    with HallClient(url) as kiosk:
        kiosk.issue_ticket(category, priority="appointment", appointment_at=datetime.now(UTC))
        issued += 1
        for i in range(normal):
            kiosk.issue_ticket(category, priority="green" if i == 2 else "normal")
            issued += 1
    return issued


class SimulatedWindow:
    """A second window run by a script: calls, serves for a few seconds, completes, repeats."""

    def __init__(self, url: str, *, staff: tuple[str, str] = SIM_STAFF,
                 window_no: int = SIM_WINDOW, serve_s: tuple[float, float] = (30.0, 75.0),
                 seed: int = 2) -> None:
        self.client = HallClient(url)
        self.staff = staff
        self.window_no = window_no
        self.serve_s = serve_s
        self.served = 0
        self._rng = random.Random(seed)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="demo-window", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        try:
            self.client.logout()
        except Exception:
            log.debug("simulated window logout failed", exc_info=True)
        self.client.close()

    def _run(self) -> None:
        try:
            self.client.login(self.staff[0], self.staff[1], window_no=self.window_no)
        except Exception:
            log.exception("simulated window could not sign in")
            return
        while not self._stop.is_set():
            try:
                t = self.client.call_next(self.window_no)
                if t is None:
                    self._stop.wait(3.0)
                    continue
                if self._stop.wait(self._rng.uniform(1.0, 3.0)):
                    break
                self.client.start_service(t.id)
                if self._stop.wait(self._rng.uniform(*self.serve_s)):
                    break
                self.client.complete(t.id, "completed")
                self.served += 1
            except Exception as exc:
                log.warning("simulated window: %s", exc)
                self._stop.wait(3.0)
