"""A small asyncio TCP fault proxy on 127.0.0.1, between the client and the reference server.

`tc netem` does not work in this kernel and toxiproxy is not packaged (RELIABILITY.md), so this
is ours. It runs its own event loop in a thread; tests change its mode at any time:

* ``pass``        forward both ways untouched;
* ``reset_after_response`` forward the request, read the server's answer (so the server has
  committed), then reset the client's connection without forwarding it: the client sees a reset
  for a request that took effect, the case idempotency keys exist for;
* ``blackhole``   accept, swallow everything, answer nothing, for ``blackhole_s`` seconds (then
  close), like a dead link or a crashed router;
* ``delay``       forward with ``delay_s`` added to each chunk in either direction;
* ``cut_mid_body`` forward the request, then only the first half of the answer, then reset.

A mode applies to a connection with probability ``probability`` (decided when it is accepted),
otherwise it is passed through. ``upstream_port`` may be changed while running (the server is
restarted on another port); new connections go to the new port.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import struct
import threading
from dataclasses import dataclass, field

MODES = ("pass", "reset_after_response", "blackhole", "delay", "cut_mid_body")


@dataclass
class ProxyStats:
    connections: int = 0
    faulted: dict[str, int] = field(default_factory=dict)
    upstream_refused: int = 0


class FaultProxy:
    def __init__(
        self,
        upstream_port: int,
        *,
        mode: str = "pass",
        probability: float = 1.0,
        blackhole_s: float = 5.0,
        delay_s: float = 0.2,
        seed: int | None = None,
        listen_port: int = 0,
    ) -> None:
        self.upstream_port = upstream_port
        self.mode = mode
        self.probability = probability
        self.blackhole_s = blackhole_s
        self.delay_s = delay_s
        self.stats = ProxyStats()
        self._rng = random.Random(seed)
        self._listen_port = listen_port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.base_events.Server | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def set_mode(self, mode: str, probability: float | None = None) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; one of {MODES}")
        self.mode = mode
        if probability is not None:
            self.probability = probability

    # ---- lifecycle --------------------------------------------------------------------------

    def start(self) -> FaultProxy:
        self._thread = threading.Thread(target=self._run, name="faultproxy", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("fault proxy did not start")
        return self

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)

        async def main() -> None:
            self._server = await asyncio.start_server(
                self._handle, "127.0.0.1", self._listen_port, reuse_address=True
            )
            self.port = self._server.sockets[0].getsockname()[1]
            self._ready.set()

        loop.run_until_complete(main())
        loop.run_forever()
        loop.close()

    def stop(self) -> None:
        loop = self._loop
        if loop is None:
            return

        async def shutdown() -> None:
            if self._server is not None:
                self._server.close()
            for t in list(self._tasks):
                t.cancel()
            await asyncio.sleep(0)

        fut = asyncio.run_coroutine_threadsafe(shutdown(), loop)
        with contextlib.suppress(Exception):
            fut.result(5)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(5)
        self._loop = None

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- per connection ---------------------------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        self.stats.connections += 1
        mode = self.mode if self._rng.random() < self.probability else "pass"
        if mode != "pass":
            self.stats.faulted[mode] = self.stats.faulted.get(mode, 0) + 1
        try:
            if mode == "blackhole":
                await self._blackhole(reader, writer)
                return
            try:
                up_r, up_w = await asyncio.open_connection("127.0.0.1", self.upstream_port)
            except OSError:
                self.stats.upstream_refused += 1
                _reset(writer)
                return
            try:
                if mode in ("reset_after_response", "cut_mid_body"):
                    await self._one_exchange_then_fault(reader, writer, up_r, up_w, mode)
                else:
                    delay = self.delay_s if mode == "delay" else 0.0
                    await asyncio.gather(
                        _pipe(reader, up_w, delay), _pipe(up_r, writer, delay),
                        return_exceptions=True,
                    )
            finally:
                _close(up_w)
        except asyncio.CancelledError:
            _reset(writer)
        finally:
            _close(writer)
            if task is not None:
                self._tasks.discard(task)

    async def _blackhole(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async def swallow() -> None:
            while await reader.read(65536):
                pass

        with contextlib.suppress(TimeoutError, OSError):
            await asyncio.wait_for(swallow(), self.blackhole_s)
        _reset(writer)

    async def _one_exchange_then_fault(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        up_r: asyncio.StreamReader,
        up_w: asyncio.StreamWriter,
        mode: str,
    ) -> None:
        # Forward the client's bytes upstream until the server has answered one whole response.
        forward = asyncio.ensure_future(_pipe(reader, up_w, 0.0))
        try:
            response = await _read_http_response(up_r)
        finally:
            forward.cancel()
            with contextlib.suppress(BaseException):
                await forward
        if mode == "cut_mid_body" and response:
            writer.write(response[: max(1, len(response) // 2)])
            with contextlib.suppress(OSError):
                await writer.drain()
        _reset(writer)


async def _pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter, delay: float) -> None:
    try:
        while True:
            data = await src.read(65536)
            if not data:
                break
            if delay:
                await asyncio.sleep(delay)
            dst.write(data)
            await dst.drain()
    except (OSError, asyncio.IncompleteReadError):
        pass
    finally:
        with contextlib.suppress(OSError, RuntimeError):
            if dst.can_write_eof():
                dst.write_eof()


async def _read_http_response(r: asyncio.StreamReader) -> bytes:
    """One HTTP/1.1 response (head + Content-Length or chunked body) as raw bytes."""
    try:
        head = await r.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError) as exc:
        return getattr(exc, "partial", b"") or b""
    headers = {}
    for line in head.split(b"\r\n")[1:]:
        if b":" in line:
            k, v = line.split(b":", 1)
            headers[k.strip().lower()] = v.strip()
    body = b""
    try:
        if b"content-length" in headers:
            body = await r.readexactly(int(headers[b"content-length"]))
        elif headers.get(b"transfer-encoding", b"").lower() == b"chunked":
            while True:
                size_line = await r.readuntil(b"\r\n")
                body += size_line
                size = int(size_line.split(b";")[0], 16)
                chunk = await r.readexactly(size + 2)
                body += chunk
                if size == 0:
                    break
    except (asyncio.IncompleteReadError, OSError, ValueError):
        pass
    return head + body


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with RST (SO_LINGER 0) rather than FIN: the client sees 'connection reset'."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(Exception):
        writer.transport.abort()


def _close(writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(Exception):
        writer.close()
