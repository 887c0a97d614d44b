"""Helpers for the pad tests: real cases on the reference server and a software pad (a Python
Ed25519 key that signs exactly like the pad page does)."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from counter_app.pad.signing import b64u, canonical_message, iso_from_ms
from tests.support.server_fixtures import Api


def open_cases(desk: Api, window_no: int, n: int) -> list[int]:
    """n real completed cases at the window (ticket issued, called here, started, completed)."""
    cats = desk.get(f"/windows/{window_no}").json()["categories"]
    out = []
    for _ in range(n):
        tk = desk.post("/tickets", json={"category": cats[0]}).json()
        assert desk.post(f"/tickets/{tk['id']}/call", json={"window_no": window_no}).status_code == 200
        started = desk.post(f"/tickets/{tk['id']}/start").json()
        assert desk.post(f"/tickets/{tk['id']}/complete", json={"outcome": "completed"}).status_code == 200
        out.append(int(started["case"]["id"]))
    return out


def challenge(desk: Api, case_id: int) -> str:
    r = desk.post(f"/cases/{case_id}/rating-challenge")
    assert r.status_code == 200, r.text
    return str(r.json()["challenge"])


@dataclass
class SoftPad:
    """A pad in Python: same key type, same message, same counter rule as pad.js."""

    key: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)
    pad_id: str = field(default_factory=lambda: "pad_" + uuid.uuid4().hex[:16])
    counter: int = 0

    @property
    def public_key(self) -> str:
        return b64u(self.key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))

    @property
    def fingerprint(self) -> str:
        from hall_server.rating_check import fingerprint

        return fingerprint(self.public_key)

    def proof(self) -> dict[str, Any]:
        """A fresh heartbeat proof (query parameters pad_id, t, sig), as pad.js makes them."""
        from counter_app.pad.signing import heartbeat_message

        self._last_t = max(int(time.time() * 1000), getattr(self, "_last_t", 0) + 1)
        sig = b64u(self.key.sign(heartbeat_message(self.pad_id, self._last_t)))
        return {"pad_id": self.pad_id, "t": self._last_t, "sig": sig}

    def pad_body(self, rating: dict[str, Any]) -> dict[str, Any]:
        """A rating as the pad posts it to /pad/api/rating (rating_id, no source)."""
        out = {k: v for k, v in rating.items() if k not in ("id", "source", "reasons_version")}
        out["rating_id"] = rating["id"]
        return out

    def register_body(self, token: str) -> dict[str, Any]:
        return {"token": token, "pad_id": self.pad_id, "public_key": self.public_key, "alg": "Ed25519"}

    def rating(self, *, case_id: int, window_no: int, challenge: str, level: str = "very_satisfied",
               reasons: tuple[str, ...] = (), comment: str = "", counter: int | None = None,
               rating_id: str | None = None, pad_id: str | None = None,
               signer: Ed25519PrivateKey | None = None, reasons_version: str = "") -> dict[str, Any]:
        if counter is None:
            self.counter += 1
            counter = self.counter
        pad_time = int(time.time() * 1000)
        rid = rating_id or str(uuid.uuid4())
        pid = pad_id or self.pad_id
        msg = canonical_message(rating_id=rid, pad_id=pid, window_no=window_no, case_id=case_id,
                                challenge=challenge, level=level, reasons=reasons, comment=comment,
                                pad_counter=counter, pad_time=pad_time)
        sig = b64u((signer or self.key).sign(msg))
        return {"id": rid, "case_id": case_id, "window_no": window_no, "level": level,
                "reasons": list(reasons), "reasons_version": reasons_version, "comment": comment,
                "source": "pad", "rated_at": iso_from_ms(pad_time), "pad_id": pid,
                "pad_counter": counter, "challenge": challenge, "signature": sig}


def pad_post(base_url: str, path: str, body: Any, **kw: Any) -> Any:
    """What the pad itself sends to the hall server (no staff session, no desk in between)."""
    import requests

    with requests.Session() as s:
        s.trust_env = False
        return s.post(base_url + path, json=body, timeout=30, **kw)


def pad_get(base_url: str, path: str, **kw: Any) -> Any:
    import requests

    with requests.Session() as s:
        s.trust_env = False
        return s.get(base_url + path, timeout=kw.pop("timeout", 30), **kw)


def pair(sup: Api, desk: Api | None, window_no: int, pad: SoftPad) -> dict[str, Any]:
    """The whole pairing: the supervisor starts it on their own device, the pad registers its
    key with the server directly, the supervisor types the fingerprint the pad shows."""
    r = sup.post(f"/windows/{window_no}/pads/pairings")
    assert r.status_code == 201, r.text
    reg = pad_post(sup.url, "/pad/api/pair", pad.register_body(r.json()["token"]))
    assert reg.status_code == 200, reg.text
    assert reg.json()["status"] == "registered" and reg.json()["fingerprint"] == pad.fingerprint
    ok = sup.post(f"/pads/pairings/{reg.json()['pairing_id']}/confirm", json={"fingerprint": pad.fingerprint})
    assert ok.status_code == 200, ok.text
    return dict(ok.json())


# ---- the desk with its LAN pad link, and a real Chromium opening the pad page -------------------
CHROMIUM = "/usr/bin/chromium"
PAD_HOST = "pad.hall.test"  # mapped to 127.0.0.1 by Chromium: a non-localhost, insecure origin
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    f"--host-resolver-rules=MAP {PAD_HOST} 127.0.0.1",
]


def make_desk(server_url: str, tmp: Any, window_no: int = 1, **kw: Any) -> Any:
    """A real CounterCore with the LAN pad link on a free loopback port, signed in."""
    from counter_app.config import Settings
    from counter_desk.wiring import build_core
    from tests.support.server_fixtures import DEMO_PASSWORD, free_port

    d = tmp / f"desk{window_no}-{time.monotonic_ns()}"
    settings = Settings(server_url=server_url, window_no=window_no, data_dir=d / "data",
                        log_dir=d / "logs", idle_lock_minutes=0, pad_transport="lan",
                        pad_listen_host="127.0.0.1", pad_listen_port=free_port(), **kw)
    core = build_core(settings)
    core.session.sign_in(str(1000 + window_no), DEMO_PASSWORD)
    return core


def serve_one_case(core: Any, kiosk: Any) -> Any:
    """Issue a ticket, call it at the desk, start, complete; returns the completed Case."""
    window = core.desk.window
    kiosk.issue_ticket(window.categories[0])
    called = core.desk.call_next()
    assert called is not None
    core.desk.start()
    return core.desk.complete("completed").case


def wait_for(pred: Any, timeout: float = 30.0, what: str = "condition") -> Any:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")
