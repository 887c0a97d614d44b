"""Hand-over of ratings and their follow-ups to the provincial 好差评 platform.

Two ways out, one record shape (`record`, fields after the evaluation data of GB/T 39734-2020,
listed with their Chinese names in docs/followup.md):

- ``hall-server export-ratings --from D --to D --format jsonl|csv``: a file (JSON lines, or CSV in
  UTF-8 with a BOM so Excel on Chinese Windows opens it) of every rating rated in the range.
- ``hall-server push-ratings --url https://…``: a durable queue in the database
  (`rating_push_outbox`). `enqueue` adds one row per rating (key ``rating:<id>``) and one per
  follow-up closed by review (key ``followup:<id>``), the record frozen as queued; the key is
  the primary key, so enqueuing twice adds nothing. `push_once` takes the due rows under a lease
  (another worker skips them until it runs out), POSTs each with its key as the
  ``Idempotency-Key`` header, and marks it sent on a 2xx; anything else (an error status, a
  timeout, a dropped connection) puts it back with an exponential back-off.

Exactly once, honestly: the network gives no exactly-once delivery. A record whose reply is lost
(the receiver stored it, then the connection dropped or timed out) is sent again, so delivery is
at-least-once; the receiver must keep the keys it has applied and answer a repeat with 2xx
without applying it again. At-least-once sending + an idempotent receiver = each record takes
effect exactly once (tests/test_rating_push.py shows it through 500s, timeouts and drops).
"""

from __future__ import annotations

import csv
import functools
import io
import json
import logging
import random
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from sqlalchemy import Connection, String, and_, cast, exists, literal, or_, select

from hall_server import followups
from hall_server import schema as t
from hall_server.core import get_meta
from hall_server.db import Store, Tx, iso_ms, now_ms

log = logging.getLogger("hall_server.rating_export")

SCORES = {"very_satisfied": 5, "satisfied": 4, "basic": 3, "dissatisfied": 2, "very_dissatisfied": 1}
LEVEL_ZH = {"very_satisfied": "非常满意", "satisfied": "满意", "basic": "基本满意", "dissatisfied": "不满意",
            "very_dissatisfied": "非常不满意"}
# Our sources as the evaluation channels of the standard (现场评价器 / 二维码 / ...).
CHANNELS = {"pad": "window_device", "second_screen": "window_device", "serial": "window_device",
            "desk": "window_device", "later": "qr_code"}

FIELDS = ("record_id", "hall_code", "window_no", "staff_no", "case_no", "matter_code", "matter_name",
          "channel", "source", "assurance", "level", "level_score", "level_zh", "reasons", "reasons_version",
          "comment", "rated_at", "real_name", "excluded_from_figures", "appeal_state", "followup_state",
          "followup_due_day", "followup_valid", "callback_reached", "rectification", "answer", "closed_at")


def _query() -> Any:
    r, c, f = t.ratings.c, t.cases.c, t.followups.c
    return (select(r.id, r.window_no, r.level, r.reasons, r.reasons_version, r.comment, r.source, r.assurance,
                   r.rated_ms, r.excluded_from_figures, c.case_no, c.staff_no, c.matter_code, c.id.label("case_id"),
                   t.matters.c.name_zh.label("matter_name"), f.id.label("followup_id"), f.state, f.due_day, f.valid,
                   f.reached, f.closed_ms, t.appeals.c.state.label("appeal_state"),
                   t.case_applicants.c.case_id.label("applicant_case"))
            .join(t.cases, c.id == r.case_id)
            .outerjoin(t.matters, t.matters.c.code == c.matter_code)
            .outerjoin(t.followups, f.rating_id == r.id)
            .outerjoin(t.appeals, t.appeals.c.rating_id == r.id)
            .outerjoin(t.case_applicants, t.case_applicants.c.case_id == c.id))


def _last_step(conn: Connection, fid: int | None, step: str, key: str) -> str:
    if fid is None:
        return ""
    row = conn.execute(select(t.followup_steps.c.data).where(
        t.followup_steps.c.followup_id == fid, t.followup_steps.c.step == step)
        .order_by(t.followup_steps.c.id.desc()).limit(1)).first()
    return "" if row is None else str(json.loads(row[0]).get(key, ""))


def _record(conn: Connection, hall_code: str, row: Any) -> dict[str, Any]:
    fid = row["followup_id"]
    return {
        "record_id": row["id"], "hall_code": hall_code, "window_no": row["window_no"],
        "staff_no": row["staff_no"], "case_no": row["case_no"], "matter_code": row["matter_code"] or "",
        "matter_name": row["matter_name"] or "", "channel": CHANNELS.get(row["source"], row["source"]),
        "source": row["source"], "assurance": row["assurance"], "level": row["level"],
        "level_score": SCORES.get(row["level"]), "level_zh": LEVEL_ZH.get(row["level"], ""),
        "reasons": json.loads(row["reasons"]), "reasons_version": row["reasons_version"],
        "comment": row["comment"], "rated_at": iso_ms(row["rated_ms"]),
        "real_name": row["applicant_case"] is not None,
        "excluded_from_figures": bool(row["excluded_from_figures"]), "appeal_state": row["appeal_state"] or "",
        "followup_state": row["state"] or "", "followup_due_day": row["due_day"] or "",
        "followup_valid": row["valid"], "callback_reached": row["reached"],
        "rectification": _last_step(conn, fid, "rectify", "action"),
        "answer": _last_step(conn, fid, "answer", "answer"), "closed_at": iso_ms(row["closed_ms"]),
    }


def records(conn: Connection, hall: Any, from_day: str, to_day: str) -> list[dict[str, Any]]:
    """Every rating whose local day is in [from_day, to_day], oldest first, with its follow-up."""
    code = get_meta(conn, "hall_code") or ""
    q = _query().where(t.ratings.c.day >= from_day, t.ratings.c.day <= to_day).order_by(
        t.ratings.c.rated_ms, t.ratings.c.id)
    return [_record(conn, code, r) for r in conn.execute(q).mappings()]


def to_jsonl(recs: Iterable[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(r, ensure_ascii=False, sort_keys=True).encode() + b"\n" for r in recs)


def to_csv(recs: Iterable[dict[str, Any]]) -> bytes:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=FIELDS, lineterminator="\r\n")
    w.writeheader()
    for r in recs:
        w.writerow({k: ("|".join(v) if isinstance(v, list) else "" if v is None else
                        ("true" if v is True else "false" if v is False else v)) for k, v in r.items()})
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


# ---- the durable push queue ---------------------------------------------------------------------
def enqueue(tx: Tx) -> int:
    """Queue every rating and every closed follow-up not queued yet. Returns how many rows."""
    conn = tx.conn
    followups.sweep(conn)  # a bad rating stored by a path that opened no follow-up gets one now
    code = get_meta(conn, "hall_code") or ""
    o, f = t.rating_push_outbox.c, t.followups.c
    # Only what is not queued yet is read: a pass costs the new records, not the whole history.
    rating_queued = exists().where(o.key == literal("rating:") + t.ratings.c.id)
    followup_queued = exists().where(o.key == literal("followup:") + cast(f.id, String))
    q = _query().where(or_(~rating_queued, and_(f.state == "closed", ~followup_queued)))
    now = now_ms()
    rows = []
    for r in conn.execute(q.order_by(t.ratings.c.rated_ms, t.ratings.c.id)).mappings():
        rec = _record(conn, code, r)
        for key, kind, wanted in ((f"rating:{r['id']}", "rating", True),
                                  (f"followup:{r['followup_id']}", "followup", r["state"] == "closed")):
            if wanted and not conn.execute(select(o.key).where(o.key == key)).first():
                rows.append({"key": key, "kind": kind, "record": rec})
    for row in rows:
        conn.execute(t.rating_push_outbox.insert().values(
            key=row["key"], kind=row["kind"], record=json.dumps(row["record"], ensure_ascii=False, sort_keys=True),
            created_ms=now, attempts=0, next_attempt_ms=now, last_error=""))
    return len(rows)


def check_url(url: str) -> str:
    """The endpoint must be HTTPS; plain HTTP only to this machine (tests, a local relay)."""
    u = urlsplit(url)
    if u.scheme == "https" and u.hostname:
        return url
    if u.scheme == "http" and u.hostname in ("127.0.0.1", "localhost", "::1"):
        return url
    raise ValueError(f"push endpoint must be https:// (got {url!r}) / 推送地址必须是 https://")


@dataclass
class PushConfig:
    url: str
    timeout_s: float = 10.0
    verify: bool | str = True  # a CA bundle path for a provincial private CA
    batch: int = 50
    lease_s: float = 60.0
    backoff_base_s: float = 5.0
    backoff_cap_s: float = 3600.0
    headers: dict[str, str] | None = None


def backoff_ms(cfg: PushConfig, attempts: int) -> int:
    """Exponential back-off with jitter: base * 2**(attempts-1), capped, times 0.5..1."""
    raw = min(cfg.backoff_cap_s, cfg.backoff_base_s * 2 ** max(0, attempts - 1))
    return int(raw * (0.5 + random.random() / 2) * 1000)  # noqa: S311 - spreading retries, not a secret


def _claim(tx: Tx, cfg: PushConfig) -> list[tuple[str, str, str, int]]:
    now = now_ms()
    o = t.rating_push_outbox.c
    q = (select(o.key, o.kind, o.record, o.attempts)
         .where(o.sent_ms.is_(None), o.next_attempt_ms <= now,
                (o.lease_until_ms.is_(None)) | (o.lease_until_ms < now))
         .order_by(o.next_attempt_ms, o.key).limit(cfg.batch))
    if tx.conn.dialect.name == "postgresql":
        q = q.with_for_update(skip_locked=True)
    rows = [(str(k), str(kd), str(rec), int(a)) for k, kd, rec, a in tx.conn.execute(q).all()]
    if rows:
        tx.conn.execute(t.rating_push_outbox.update().where(o.key.in_([r[0] for r in rows]))
                        .values(lease_until_ms=now + int(cfg.lease_s * 1000)))
    return rows


def _send(session: requests.Session, cfg: PushConfig, key: str, kind: str, record: str) -> str | None:
    """None when the receiver took it (2xx), else the error to record."""
    body = b'{"key":' + json.dumps(key).encode() + b',"kind":' + json.dumps(kind).encode() + \
        b',"record":' + record.encode() + b"}"
    headers = {"Content-Type": "application/json", "Idempotency-Key": key, **(cfg.headers or {})}
    try:
        r = session.post(cfg.url, data=body, headers=headers, timeout=cfg.timeout_s, verify=cfg.verify)
    except requests.RequestException as e:
        return f"{type(e).__name__}"
    if 200 <= r.status_code < 300:
        return None
    return f"HTTP {r.status_code}"


def _mark_sent(tx: Tx, key: str) -> None:
    o = t.rating_push_outbox.c
    tx.conn.execute(t.rating_push_outbox.update().where(o.key == key).values(
        sent_ms=now_ms(), lease_until_ms=None, attempts=o.attempts + 1, last_error=""))


def _mark_failed(tx: Tx, cfg: PushConfig, key: str, attempts: int, err: str) -> None:
    tx.conn.execute(t.rating_push_outbox.update().where(t.rating_push_outbox.c.key == key).values(
        attempts=attempts, next_attempt_ms=now_ms() + backoff_ms(cfg, attempts), lease_until_ms=None,
        last_error=err[:500]))


def push_once(store: Store, cfg: PushConfig, session: requests.Session | None = None) -> dict[str, int]:
    """One pass: queue what is new, send what is due. Returns {"queued", "sent", "failed"}."""
    check_url(cfg.url)
    queued = store.write_sync(enqueue)
    claimed = store.write_sync(lambda tx: _claim(tx, cfg))
    own = session is None
    s = session or requests.Session()
    s.trust_env = False
    sent = failed = 0
    try:
        for key, kind, record, attempts in claimed:
            err = _send(s, cfg, key, kind, record)
            if err is None:
                store.write_sync(functools.partial(_mark_sent, key=key))
                sent += 1
            else:
                log.warning("push of %s failed (attempt %d): %s", key, attempts + 1, err)
                store.write_sync(functools.partial(_mark_failed, cfg=cfg, key=key, attempts=attempts + 1, err=err))
                failed += 1
    finally:
        if own:
            s.close()
    return {"queued": queued, "sent": sent, "failed": failed}


def pending(conn: Connection) -> dict[str, int]:
    o = t.rating_push_outbox.c
    rows = conn.execute(select(o.sent_ms, o.attempts)).all()
    return {"total": len(rows), "sent": sum(1 for s, _ in rows if s is not None),
            "waiting": sum(1 for s, _ in rows if s is None),
            "retrying": sum(1 for s, a in rows if s is None and a > 0)}


def run_worker(store: Store, cfg: PushConfig, stop: threading.Event, every_s: float = 30.0) -> None:
    """`hall-server push-ratings --loop`: a pass every `every_s` seconds until `stop` is set."""
    while not stop.is_set():
        try:
            out = push_once(store, cfg)
            if out["sent"] or out["failed"]:
                log.info("rating push: %s", out)
        except Exception:  # noqa: BLE001 - the worker keeps going; the queue keeps the records
            log.exception("rating push pass failed")
        stop.wait(every_s)
