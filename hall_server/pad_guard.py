"""Guards for the pad's routes on the hall server (pads.py, pad_site.py): the Host check
(DNS rebinding), the pad's proof (a fresh Ed25519 signature by the paired key over
"hall-pad-heartbeat-v1\\n<pad_id>\\n<ms>", good once in the whole hall: `claim_proof_op`
records it in the database, so a proof replayed to another server process is refused as well)
and the cap on long-polls per address.

Nothing here trusts the window PC: a request counts as the pad's only with a proof that
verifies with the key a supervisor confirmed (pads.confirm). Unproven requests are answered at
once (403), so a LAN visitor holds no slot and waits for nothing.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from typing import Any
from urllib.parse import urlsplit

from fastapi import Request
from sqlalchemy import Connection, select

from hall_server import schema as t
from hall_server.core import Hall, hall_of, insert_ignore
from hall_server.errors import ApiError
from hall_server.rating_check import _err, heartbeat_message, verify_signature

LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})
REPLAY_MEMORY = 4096  # proofs remembered per process (a fast path; the database decides)
PROOF_SKEW_MS = 10 * 60_000  # a proof may trail the pad's newest by this much (parallel requests)


def allowed_hosts(hall: Hall) -> frozenset[str]:
    names = set(LOOPBACK) | {h.lower() for h in hall.settings.pad_hosts}
    public = urlsplit(hall.settings.public_url).hostname if hall.settings.public_url else None
    if public:
        names.add(public.lower())
    return frozenset(names)


def host_name(header: str) -> str:
    header = header.strip().lower()
    if header.startswith("["):  # [v6]:port
        return header.split("]", 1)[0] + "]"
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


def check_host(request: Request) -> None:
    """421 unless the Host is one the hall configured (public_url, pad_hosts) or loopback: a
    page on another name that rebinds to the server's address gets nothing."""
    hall = hall_of(request)
    host = host_name(request.headers.get("host", ""))
    if host not in allowed_hosts(hall):
        raise ApiError(421, "misdirected_request", {"host": host[:100]},
                       message_zh="请求的主机名不属于本大厅服务器",
                       message_en="This host name is not one of the hall server's")
    origin = request.headers.get("origin")
    if origin is not None and origin != "null":
        if host_name(urlsplit(origin).netloc) != host:
            raise ApiError(403, "forbidden", {"origin": origin[:100]})


class _PadMemory:
    """Per process: proofs seen, the newest proof time per pad, waiting polls per address."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.proofs: OrderedDict[tuple[str, int], None] = OrderedDict()
        self.newest: dict[str, int] = {}
        self.polls: dict[str, int] = {}


_MEMORY: weakref.WeakKeyDictionary[Hall, _PadMemory] = weakref.WeakKeyDictionary()


def memory(hall: Hall) -> _PadMemory:
    mem = _MEMORY.get(hall)
    if mem is None:
        mem = _MEMORY.setdefault(hall, _PadMemory())
    return mem


def paired_pad_row(conn: Connection, pad_id: str) -> Any:
    return conn.execute(select(t.pads).where(
        t.pads.c.pad_id == pad_id, t.pads.c.unpaired_ms.is_(None))).mappings().first()


def check_proof(hall: Hall, pad: Any, pad_id: str, pad_time: int, sig: str) -> None:
    """Raise 403 unless (pad_id, pad_time, sig) is a fresh proof by the paired `pad` row."""
    if pad is None or not sig or len(sig) > 200:
        raise _err(403, "pad_proof_required")
    mem = memory(hall)
    with mem.lock:
        newest = mem.newest.get(pad_id, 0)
        if (pad_id, pad_time) in mem.proofs or pad_time < newest - PROOF_SKEW_MS:
            raise _err(403, "pad_proof_required", {"reason": "replayed"})
    if not verify_signature(pad["public_key"], heartbeat_message(pad_id, pad_time), sig):
        raise _err(403, "pad_proof_required")
    with mem.lock:
        if (pad_id, pad_time) in mem.proofs:
            raise _err(403, "pad_proof_required", {"reason": "replayed"})
        mem.proofs[(pad_id, pad_time)] = None
        while len(mem.proofs) > REPLAY_MEMORY:
            mem.proofs.popitem(last=False)
        mem.newest[pad_id] = max(newest, pad_time)


def claim_proof_op(conn: Connection, pad_id: str, pad_time: int, now: int) -> bool:
    """Record a verified proof for every server process. False when any process already took
    it, or it trails the pad's newest proof by more than PROOF_SKEW_MS (the replay window).

    The primary key (pad_id, pad_time) is the arbiter: of two processes inserting the same proof
    at once, PostgreSQL lets one commit and the other insert nothing."""
    newest = conn.execute(select(t.pads.c.newest_proof_ms)
                          .where(t.pads.c.pad_id == pad_id)).scalar()
    if newest is not None and pad_time < int(newest) - PROOF_SKEW_MS:
        return False
    if not insert_ignore(conn, t.pad_proofs,
                         {"pad_id": pad_id, "pad_time": pad_time, "seen_ms": now},
                         ["pad_id", "pad_time"]):
        return False
    if newest is None or pad_time > int(newest):
        conn.execute(t.pads.update().where(t.pads.c.pad_id == pad_id)
                     .values(newest_proof_ms=pad_time))
    return True


def prune_proofs_op(conn: Connection, now: int) -> int:
    """Proofs older than the replay window can never be accepted again (they trail their pad's
    newest, or the pad is gone): delete them. Hourly, with the events."""
    cut = now - 2 * PROOF_SKEW_MS
    return int(conn.execute(t.pad_proofs.delete().where(t.pad_proofs.c.seen_ms < cut)).rowcount or 0)


class PollSlot:
    """A waiting long-poll of one client address; over the cap: 503 at once."""

    def __init__(self, hall: Hall, address: str) -> None:
        self.mem = memory(hall)
        self.address = address
        self.limit = hall.settings.pad_max_polls_per_address

    def __enter__(self) -> PollSlot:
        with self.mem.lock:
            n = self.mem.polls.get(self.address, 0)
            if n >= self.limit:
                raise ApiError(503, "busy", {"retry_after": 2}, headers={"Retry-After": "2"},
                               message_zh="评价器连接过多，请稍后再试",
                               message_en="Too many pad connections; try again later")
            self.mem.polls[self.address] = n + 1
        return self

    def __exit__(self, *exc: object) -> None:
        with self.mem.lock:
            n = self.mem.polls.get(self.address, 1) - 1
            if n <= 0:
                self.mem.polls.pop(self.address, None)
            else:
                self.mem.polls[self.address] = n
