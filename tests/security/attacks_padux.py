"""Live attacks on the pad's "still rating" paths (issue 16 item 8): `POST /pad/api/touch`
restarts an open rating's period and `POST /pad/api/reopen` opens a case again from the pad's
rate-later screen. Only the paired pad, with a fresh proof by its key, may do either, and only
for the case its own window shows. Run by `python -m tests.security.attack URL` against a DEMO
hall server; cases are made at window 9 (no other attack module uses it).
"""

from __future__ import annotations

import time
import uuid

from tests.security.attack_base import AttackContext, AttackResult
from tests.security.attacks_pad import PASSWORD, _answer, _b64u, _case, _key


def attack_visitor_keeps_a_rating_open(base_url: str, ctx: AttackContext) -> list[AttackResult]:
    """A LAN visitor (no paired key) tries to hold window 9's rating open or reopen it."""
    token = ctx.login("1009", PASSWORD, 9)
    case_id = _case(ctx, token, 9)
    ctx.request("POST", f"/cases/{case_id}/rating-challenge", token=token)
    k, _pub = _key()
    pad_id = "pad_" + uuid.uuid4().hex[:12]
    t = int(time.time() * 1000)
    sig = _b64u(k.sign(f"hall-pad-heartbeat-v1\n{pad_id}\n{t}".encode()))
    out = []
    for path in ("/pad/api/touch", "/pad/api/reopen"):
        r = ctx.session.post(base_url.rstrip("/") + path, timeout=ctx.timeout,
                             json={"case_id": case_id, "pad_id": pad_id, "t": t, "sig": sig})
        out.append(AttackResult(f"padux.visitor{path.rsplit('/', 1)[-1]}",
                                f"POST {path} for case {case_id} signed by an unpaired key",
                                r.status_code, _answer(r), r.status_code == 403))
    return out


def attack_desk_session_extends_the_rating(base_url: str, ctx: AttackContext) -> list[AttackResult]:
    """The window PC (a staff session, no pad key) tries to keep its own rating open."""
    token = ctx.login("1009", PASSWORD, 9)
    case_id = _case(ctx, token, 9)
    ctx.request("POST", f"/cases/{case_id}/rating-challenge", token=token)
    out = []
    for path in ("/pad/api/touch", "/pad/api/reopen"):
        r = ctx.session.post(base_url.rstrip("/") + path, timeout=ctx.timeout,
                             headers={"Authorization": f"Bearer {token}"}, json={"case_id": case_id})
        out.append(AttackResult(f"padux.desk{path.rsplit('/', 1)[-1]}",
                                f"POST {path} for case {case_id} with the window's staff token",
                                r.status_code, _answer(r), r.status_code in (400, 403)))
    return out
