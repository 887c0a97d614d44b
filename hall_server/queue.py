"""The queue state machine: issuing tickets, calling, and every transition, as functions that
run inside one write transaction (`Tx`). Illegal moves raise `ApiError` 409 with a clear code.

Call order (docs/hall-api.md): green channel, then appointments due within 10 minutes, then the
rest (incl. appointments not yet due) by `queued_at`. `sort_key` = rank * 10**13 + queued_ms
makes "the next one" one walk of the (state, sort_key) index: the first eligible row wins.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import Connection, RowMapping, select

from hall_server import schema as t
from hall_server.core import (
    CASE_COLS,
    JSON,
    TICKET_COLS,
    Hall,
    case_from_row,
    case_json,
    get_meta,
    load_window,
    next_counter,
    ticket_json,
    window_out,
)
from hall_server.db import Tx, now_ms, run, run_many
from hall_server.errors import ApiError
from hall_server.lifecycle import window_close_values
from hall_server.security import Principal

log = logging.getLogger("hall_server")

RANK = {"green": 0, "appointment": 1, "normal": 2}
RANK_SPAN = 10**13
APPOINTMENT_LEAD_MS = 10 * 60 * 1000
OUTCOMES = ("completed", "accepted", "correction", "rejected", "forwarded")


def sort_key(priority: str, queued_ms: int) -> int:
    return RANK[priority] * RANK_SPAN + queued_ms


def _cats(w: RowMapping) -> list[str]:
    return [c for c in w["categories"].split(",") if c]


def _emit_ticket(tx: Tx, type_: str, tk: JSON) -> None:
    tx.emit(
        type_,
        {"ticket": tk},
        window_no=tk["window_no"],
        category=tk["category"],
        target_window_no=tk["target_window_no"],
    )


def _emit_window(tx: Tx, type_: str, w: JSON) -> None:
    tx.emit(type_, {"window": w}, window_no=w["no"])


# Hand-written SQL on the hot paths; every interpolated name below is one of our own column
# names from schema.py, never request data (values always go as bound parameters).
COLS_SQL = ", ".join(c.name for c in TICKET_COLS)
_LOAD_SQL = f"SELECT {COLS_SQL} FROM tickets WHERE id = :id"  # noqa: S608


def load_ticket(conn: Connection, ticket_id: int, *, for_update: bool = False) -> RowMapping:
    lock = for_update and conn.dialect.name == "postgresql"
    row = run(conn, _LOAD_SQL + (" FOR UPDATE" if lock else ""), {"id": ticket_id}).mappings().first()
    if row is None:
        raise ApiError(404, "not_found", {"ticket_id": ticket_id})
    return row


def _update_ticket(conn: Connection, ticket_id: int, *, free_window: int | None = None, **values: Any) -> JSON:
    """UPDATE the ticket and return its JSON; `free_window`: that window serves nobody now
    (on PostgreSQL in the same statement: one round trip less)."""
    sets = ", ".join(f"{k} = :{k}" for k in sorted(values))
    sql = f"UPDATE tickets SET {sets} WHERE id = :id_ RETURNING {COLS_SQL}"  # noqa: S608
    params = {**values, "id_": ticket_id}
    if free_window is not None and conn.dialect.name == "postgresql":
        sql = (f"WITH t AS ({sql}), w AS (UPDATE windows SET current_ticket_id = NULL "  # noqa: S608
               f"WHERE no = :free_w) SELECT {COLS_SQL} FROM t")
        params["free_w"] = free_window
        free_window = None
    row = run(conn, sql, params).mappings().one()
    _set_current(conn, free_window, None)
    return ticket_json(row)


def _set_current(conn: Connection, window_no: int | None, ticket_id: int | None) -> None:
    if window_no is not None:
        run(conn, "UPDATE windows SET current_ticket_id = :t WHERE no = :w", {"t": ticket_id, "w": window_no})


def acting_window(p: Principal, window_no: int) -> None:
    """Staff act only for the window they signed in at, while their session holds it;
    supervisors/IT for any."""
    if p.role == "staff" and p.window_no != window_no:
        if p.lost_window_no == window_no:
            raise ApiError(403, "window_not_held", {"window_no": window_no})
        raise ApiError(403, "forbidden", {"window_no": window_no, "signed_in_at": p.window_no})


def _own_ticket(p: Principal, tk: RowMapping, *states: str) -> None:
    if tk["state"] not in states:
        raise ApiError(409, "illegal_transition", {"state": tk["state"], "allowed_from": list(states)})
    if tk["window_no"] is not None and p.role == "staff" and tk["window_no"] != p.window_no:
        if tk["window_no"] == p.lost_window_no:
            raise ApiError(403, "window_not_held", {"window_no": tk["window_no"]})
        raise ApiError(409, "not_your_ticket", {"window_no": tk["window_no"]})


_WINDOW_SQL = "SELECT no, categories, state, pause_reason_code, current_ticket_id FROM windows WHERE no = :no"


def _ready_window(conn: Connection, window_no: int) -> RowMapping:
    lock = " FOR UPDATE" if conn.dialect.name == "postgresql" else ""
    w = run(conn, _WINDOW_SQL + lock, {"no": window_no}).mappings().first()
    if w is None:
        raise ApiError(404, "not_found", {"window_no": window_no})
    if w["state"] == "paused":
        raise ApiError(409, "window_paused", {"pause_reason_code": w["pause_reason_code"]})
    if w["state"] != "open":
        raise ApiError(409, "window_closed")
    if w["current_ticket_id"] is not None:
        raise ApiError(409, "window_busy", {"current_ticket_id": int(w["current_ticket_id"])})
    return w


# ---- issue -------------------------------------------------------------------------------
_CATEGORY_SQL = "SELECT code FROM categories WHERE code = :c"
_LIVE_MATTER_SQL = "SELECT code FROM matters WHERE code = :m AND deleted = false"
_ISSUE_SQL = (
    "INSERT INTO tickets (number, category, matter_code, priority, appointment_ms, state, "  # noqa: S608
    "issued_ms, queued_ms, recalls, sort_key, day) VALUES (:number, :category, :matter, "
    f":priority, :appt, 'waiting', :now, :now, 0, :sk, :day) RETURNING {COLS_SQL}"
)


def issue_ticket(
    tx: Tx,
    hall: Hall,
    category: str,
    priority: str,
    matter_code: str | None,
    appointment_ms: int | None,
) -> JSON:
    conn = tx.conn
    if run(conn, _CATEGORY_SQL, {"c": category}).first() is None:
        raise ApiError(422, "unknown_category", {"category": category})
    if matter_code is not None and run(conn, _LIVE_MATTER_SQL, {"m": matter_code}).first() is None:
        raise ApiError(422, "unknown_matter", {"matter_code": matter_code})
    now = now_ms()
    day = hall.day_of(now)
    n = next_counter(conn, category, day)
    row = run(conn, _ISSUE_SQL, {
        "number": f"{category}{n:03d}", "category": category, "matter": matter_code,
        "priority": priority, "appt": appointment_ms, "now": now,
        "sk": sort_key(priority, now), "day": day,
    }).mappings().one()
    tk = ticket_json(row)
    _emit_ticket(tx, "ticket.issued", tk)
    return tk


# ---- call next: the hot path ---------------------------------------------------------------
_NEXT_SQL = (
    "SELECT id, priority, appointment_ms, queued_ms FROM tickets "
    "WHERE state = 'waiting' AND sort_key >= :lo AND sort_key < :hi "
    "AND (target_window_no = :w OR (target_window_no IS NULL AND category IN ({cats}))) "
    "{extra} ORDER BY sort_key, id LIMIT 1{lock}"
)


def _first(conn: Connection, window_no: int, cats: list[str], lo: int, hi: int, extra: str,
           params: dict[str, Any]) -> RowMapping | None:
    is_pg = conn.dialect.name == "postgresql"
    names = [f"c{i}" for i in range(len(cats))] or ["cnone"]
    sql = _NEXT_SQL.format(
        cats=", ".join(f":{n}" for n in names),
        extra=extra,
        lock=" FOR UPDATE SKIP LOCKED" if is_pg else "",
    )
    p: dict[str, Any] = {"w": window_no, "lo": lo, "hi": hi, **params}
    if cats:
        p.update(zip(names, cats, strict=True))
    else:
        p["cnone"] = ""  # no category is empty (and PostgreSQL text cannot hold NUL)
    return run(conn, sql, p).mappings().first()


def _pick_next_sqlite_sql(n_cats: int) -> str:
    """SQLite: pick_next's four probes in one statement (each still one walk of the
    (state, sort_key) index). Nothing to lock under the single writer, so all four run."""
    cats = ", ".join(f":c{i}" for i in range(n_cats)) if n_cats else ":cnone"
    probe = (
        "SELECT {k} AS k, id, queued_ms FROM (SELECT id, queued_ms FROM tickets "  # noqa: S608
        "WHERE state = 'waiting' AND sort_key >= :{lo} AND sort_key < :{hi} "
        f"AND (target_window_no = :w OR (target_window_no IS NULL AND category IN ({cats}))) "
        "{extra} ORDER BY sort_key, id LIMIT 1)"
    )
    return " UNION ALL ".join((
        probe.format(k=0, lo="r0", hi="r1", extra=""),
        probe.format(k=1, lo="r1", hi="r2", extra="AND appointment_ms <= :due"),
        probe.format(k=2, lo="r2", hi="r3", extra=""),
        probe.format(k=3, lo="r1", hi="r2", extra="AND (appointment_ms IS NULL OR appointment_ms > :due)"),
    ))


def pick_next(conn: Connection, window_no: int, cats: list[str], now: int) -> int | None:
    due = now + APPOINTMENT_LEAD_MS
    if conn.dialect.name == "sqlite":
        params: dict[str, Any] = {"w": window_no, "due": due, "r0": 0, "r1": RANK_SPAN,
                                  "r2": 2 * RANK_SPAN, "r3": 3 * RANK_SPAN, "cnone": ""}
        params.update((f"c{i}", c) for i, c in enumerate(cats))
        found = {r[0]: r for r in run(conn, _pick_next_sqlite_sql(len(cats)), params).all()}
        for k in (0, 1):  # green, then appointments already due
            if k in found:
                return int(found[k][1])
        normal, early = found.get(2), found.get(3)
        if normal is None and early is None:
            return None
        # the rest by queued_at; normal wins a tie, as below
        if early is None or (normal is not None and normal[2] <= early[2]):
            assert normal is not None
            return int(normal[1])
        return int(early[1])
    # green first, then appointments already due (the index walk skips early ones)
    row = _first(conn, window_no, cats, 0, RANK_SPAN, "", {})
    if row is None:
        row = _first(conn, window_no, cats, RANK_SPAN, 2 * RANK_SPAN,
                     "AND appointment_ms <= :due", {"due": due})
    if row is not None:
        return int(row["id"])
    # the rest: normal tickets and appointments not yet due, by queued_at
    normal = _first(conn, window_no, cats, 2 * RANK_SPAN, 3 * RANK_SPAN, "", {})
    early = _first(conn, window_no, cats, RANK_SPAN, 2 * RANK_SPAN,
                   "AND (appointment_ms IS NULL OR appointment_ms > :due)", {"due": due})
    if normal is None and early is None:
        return None
    if early is None or (normal is not None and normal["queued_ms"] <= early["queued_ms"]):
        assert normal is not None
        return int(normal["id"])
    return int(early["id"])


_PG_PROBE = (
    "SELECT {cols} FROM tickets WHERE state = 'waiting' AND sort_key >= :{lo} AND sort_key < :{hi} "
    "AND (target_window_no = :w OR (target_window_no IS NULL AND category IN ({cats}))) "
    "{extra} ORDER BY sort_key, id LIMIT 1 FOR UPDATE SKIP LOCKED"
)


def _call_next_pg_sql(n_cats: int) -> str:
    """PostgreSQL: pick_next's order, the call and the window's current ticket in ONE statement.
    COALESCE evaluates its sub-selects only until one gives a row, so the probes run (and
    lock) exactly as pick_next's separate queries do, including both of the last pair."""
    cats = ", ".join(f":c{i}" for i in range(n_cats)) if n_cats else ":cnone"

    def probe(lo: str, hi: str, extra: str = "", cols: str = "id") -> str:
        return _PG_PROBE.format(cols=cols, lo=lo, hi=hi, cats=cats, extra=extra)

    rest_cols = "id, queued_ms, sort_key"
    pick = (
        f"SELECT COALESCE(({probe('r0', 'r1')}), "  # noqa: S608 - our own column names only
        f"({probe('r1', 'r2', 'AND appointment_ms <= :due')}), "
        f"(SELECT id FROM (SELECT * FROM ({probe('r2', 'r3', cols=rest_cols)}) n UNION ALL "
        f"SELECT * FROM ({probe('r1', 'r2', 'AND (appointment_ms IS NULL OR appointment_ms > :due)', rest_cols)}) e"
        # normal wins a tie on queued_at, as in pick_next
        ") x ORDER BY queued_ms, sort_key DESC LIMIT 1)) AS pid"
    )
    return (
        f"WITH pick AS ({pick}), "  # noqa: S608 - only our own column names are interpolated
        "t AS (UPDATE tickets SET state = 'called', window_no = :w, called_ms = :now, "
        "first_called_ms = :now, recalls = 0 FROM pick WHERE tickets.id = pick.pid "
        f"AND tickets.state = 'waiting' RETURNING {', '.join('tickets.' + c for c in COLS_SQL.split(', '))}), "
        "cur AS (UPDATE windows SET current_ticket_id = t.id FROM t WHERE windows.no = :w) "
        f"SELECT {COLS_SQL} FROM t"
    )


def call_next(tx: Tx, hall: Hall, p: Principal, window_no: int) -> JSON:
    acting_window(p, window_no)
    conn = tx.conn
    w = _ready_window(conn, window_no)
    now = now_ms()
    if tx.is_pg:
        cats = _cats(w)
        params: dict[str, Any] = {
            "w": window_no, "now": now, "due": now + APPOINTMENT_LEAD_MS,
            "r0": 0, "r1": RANK_SPAN, "r2": 2 * RANK_SPAN, "r3": 3 * RANK_SPAN,
            "cnone": "",  # no category is empty; PostgreSQL text cannot hold NUL
        }
        params.update((f"c{i}", c) for i, c in enumerate(cats))
        row = run(conn, _call_next_pg_sql(len(cats)), params).mappings().first()
        if row is None:
            return {"ticket": None}
        tk = ticket_json(row)
        _emit_ticket(tx, "ticket.called", tk)
        return {"ticket": tk}
    tid = pick_next(conn, window_no, _cats(w), now)
    if tid is None:
        return {"ticket": None}
    tk = _call(tx, tid, window_no, now)
    return {"ticket": tk}


_CALL_SQL = (
    "UPDATE tickets SET state = 'called', window_no = :w, called_ms = :now, first_called_ms = :now, "  # noqa: S608
    f"recalls = 0 WHERE id = :id AND state = 'waiting' RETURNING {COLS_SQL}"
)


def _call(tx: Tx, tid: int, window_no: int, now: int) -> JSON:
    conn = tx.conn
    row = run(conn, _CALL_SQL, {"w": window_no, "now": now, "id": tid}).mappings().first()
    if row is None:
        raise ApiError(409, "ticket_taken", {"ticket_id": tid})
    _set_current(conn, window_no, tid)
    tk = ticket_json(row)
    _emit_ticket(tx, "ticket.called", tk)
    return tk


def call_ticket(tx: Tx, hall: Hall, p: Principal, ticket_id: int, window_no: int) -> JSON:
    acting_window(p, window_no)
    conn = tx.conn
    tk = load_ticket(conn, ticket_id, for_update=True)
    _ready_window(conn, window_no)
    if tk["state"] != "waiting":
        raise ApiError(409, "ticket_taken", {"state": tk["state"], "window_no": tk["window_no"]})
    return _call(tx, ticket_id, window_no, now_ms())


def recall(tx: Tx, hall: Hall, p: Principal, ticket_id: int) -> JSON:
    tk = load_ticket(tx.conn, ticket_id, for_update=True)
    _own_ticket(p, tk, "called")
    if tk["recalls"] >= hall.rules.recall_limit:
        raise ApiError(409, "recall_limit", {"recall_limit": hall.rules.recall_limit})
    out = _update_ticket(tx.conn, ticket_id, recalls=tk["recalls"] + 1, called_ms=now_ms())
    _emit_ticket(tx, "ticket.recalled", out)
    return out


def no_show(tx: Tx, hall: Hall, p: Principal, ticket_id: int) -> JSON:
    tk = load_ticket(tx.conn, ticket_id, for_update=True)
    _own_ticket(p, tk, "called")
    now = now_ms()
    rules = hall.rules
    waited_ms = now - int(tk["first_called_ms"] or now)
    if tk["recalls"] < rules.no_show_min_recalls and waited_ms < rules.no_show_min_seconds * 1000:
        raise ApiError(
            409,
            "no_show_too_early",
            {
                "recalls_needed": rules.no_show_min_recalls - tk["recalls"],
                "seconds_left": max(0, (rules.no_show_min_seconds * 1000 - waited_ms + 999) // 1000),
            },
        )
    out = _update_ticket(tx.conn, ticket_id, state="no_show", finished_ms=now)
    _set_current(tx.conn, tk["window_no"], None)
    _emit_ticket(tx, "ticket.no_show", out)
    return out


_CHECKLIST_SQL = "SELECT id FROM checklist_items WHERE matter_code = :m ORDER BY position"
_OLD_MATERIALS_SQL = "SELECT item_id, status, note FROM case_materials WHERE case_id = :id"
_INSERT_MATERIAL_SQL = (
    "INSERT INTO case_materials (case_id, item_id, position, status, note) "
    "VALUES (:case_id, :item_id, :position, :status, :note)"
)


def reset_materials(conn: Connection, case_id: int, matter_code: str | None, *, fresh: bool = False) -> list[JSON]:
    """Materials follow the matter's checklist; statuses are kept where item ids match.
    `fresh`: the case was created in this transaction and has no materials yet.
    Returns the case's materials as the Case JSON lists them."""
    old: dict[str, Any] = {}
    if not fresh:
        old = {r[0]: r for r in run(conn, _OLD_MATERIALS_SQL, {"id": case_id}).all()}
        run(conn, "DELETE FROM case_materials WHERE case_id = :id", {"id": case_id})
    if matter_code is None:
        return []
    rows = []
    for pos, (item,) in enumerate(run(conn, _CHECKLIST_SQL, {"m": matter_code}).all()):
        prev = old.get(item)
        rows.append(
            {
                "case_id": case_id,
                "item_id": item,
                "position": pos,
                # 未核对 until the clerk marks it (issue 16): "missing" is a clerk's finding.
                "status": prev[1] if prev else "unchecked",
                "note": prev[2] if prev else "",
            }
        )
    run_many(conn, _INSERT_MATERIAL_SQL, rows)
    return [{"item_id": r["item_id"], "status": r["status"], "note": r["note"]} for r in rows]


_NEW_CASE_SQL = (
    "INSERT INTO cases (case_no, ticket_id, matter_code, staff_no, window_no, started_ms, day, "
    "outcome_note, reason, notes) VALUES (:case_no, :tid, :matter, :staff, :w, :now, :day, '', '', '') "
    "RETURNING id"
)
_MOVE_CASE_SQL = "UPDATE cases SET staff_no = :staff, window_no = :w WHERE id = :id"
# PostgreSQL: the day's case counter is ONE row that every window's start/complete must lock
# until COMMIT, so it is taken in the last statement of the transaction, in one round trip.
_NUMBER_CASE_PG_SQL = (
    "WITH c AS (INSERT INTO counters (scope, day, n) VALUES ('case', :day, 1) "
    "ON CONFLICT (scope, day) DO UPDATE SET n = counters.n + 1 RETURNING n) "
    "UPDATE cases SET case_no = :prefix || CASE WHEN c.n < 10000 THEN lpad(c.n::text, 4, '0') "
    "ELSE c.n::text END FROM c WHERE cases.id = :id RETURNING cases.case_no"
)


def _number_case(conn: Connection, hall: Hall, case_id: int, day: str) -> str:
    """Give a case opened in this transaction its number (办件编号) from the day's counter.
    Called as late as possible: see _NUMBER_CASE_PG_SQL."""
    prefix = f"{hall.code}-{day.replace('-', '')}-"
    if conn.dialect.name == "postgresql":
        return str(run(conn, _NUMBER_CASE_PG_SQL, {"day": day, "prefix": prefix, "id": case_id}).scalar_one())
    case_no = f"{prefix}{next_counter(conn, 'case', day):04d}"
    run(conn, "UPDATE cases SET case_no = :no WHERE id = :id", {"no": case_no, "id": case_id})
    return case_no


def _start(
    tx: Tx, hall: Hall, p: Principal, tk: RowMapping, now: int, *, update: bool = True
) -> tuple[JSON, int, str | None, list[JSON] | None]:
    """Serving starts: the ticket's case is opened (or continued) and `ticket.started` emitted.
    Returns the ticket, the case id, for a new case the day whose number `_number_case` must
    still give it, and a new case's materials. `update=False`: the caller's next UPDATE of the
    ticket sets started_ms and case_id too (complete straight from called), so the serving
    row is only computed for the event: the locked row plus these changes is what the UPDATE
    would have returned."""
    conn = tx.conn
    window_no = int(tk["window_no"])
    case_id = tk["case_id"]
    new_day = None
    mats = None
    if case_id is None:
        new_day = hall.day_of(now)
        # A placeholder, unique per ticket and never committed: _number_case replaces it.
        case_id = run(conn, _NEW_CASE_SQL, {
            "case_no": f"pending-{tk['id']}", "tid": tk["id"], "matter": tk["matter_code"],
            "staff": p.staff_no, "w": window_no, "now": now, "day": new_day,
        }).scalar_one()
        mats = reset_materials(conn, int(case_id), tk["matter_code"], fresh=True)
    else:
        # A transferred or resumed visit continues the same case at the new window.
        run(conn, _MOVE_CASE_SQL, {"staff": p.staff_no, "w": window_no, "id": case_id})
    changes = {"state": "serving", "started_ms": now, "case_id": case_id}
    if update:
        out = _update_ticket(conn, int(tk["id"]), **changes)
    else:
        out = ticket_json({**tk, **changes})
    _emit_ticket(tx, "ticket.started", out)
    return out, int(case_id), new_day, mats


def _case_out(conn: Connection, hall: Hall, case_id: int, new_day: str | None,
              row: Any = None, mats: list[JSON] | None = None) -> JSON:
    """The case's JSON (from `row`/`mats` when the caller has them), numbered last if new."""
    if row is None:
        case = case_json(conn, case_id)
    else:
        if mats is None:
            mats = [{"item_id": m[0], "status": m[1], "note": m[2]}
                    for m in run(conn, _CASE_MATERIALS_SQL, {"id": case_id}).all()]
        case = case_from_row(row, mats)
    if new_day is not None:
        case["case_no"] = _number_case(conn, hall, case_id, new_day)
    return case


_CASE_MATERIALS_SQL = "SELECT item_id, status, note FROM case_materials WHERE case_id = :id ORDER BY position"


def start(tx: Tx, hall: Hall, p: Principal, ticket_id: int) -> JSON:
    tk = load_ticket(tx.conn, ticket_id, for_update=True)
    _own_ticket(p, tk, "called")
    out, case_id, new_day, _ = _start(tx, hall, p, tk, now_ms())
    return {"ticket": out, "case": _case_out(tx.conn, hall, case_id, new_day)}


def transfer(
    tx: Tx,
    hall: Hall,
    p: Principal,
    ticket_id: int,
    to_window_no: int | None,
    to_category: str | None,
    matter_code: str | None,
    priority: str | None,
    reason: str = "",
) -> JSON:
    conn = tx.conn
    tk = load_ticket(conn, ticket_id, for_update=True)
    _own_ticket(p, tk, "called", "serving")
    if to_window_no is None and to_category is None and matter_code is None and priority is None:
        raise ApiError(422, "validation_error", {"errors": [{"field": "body", "message": "nothing to transfer to"}]})
    values: dict[str, Any] = {"state": "waiting", "window_no": None, "target_window_no": to_window_no}
    if to_window_no is not None:
        load_window(conn, to_window_no)
    if to_category is not None:
        if conn.execute(select(t.categories.c.code).where(t.categories.c.code == to_category)).first() is None:
            raise ApiError(422, "unknown_category", {"category": to_category})
        values["category"] = to_category
    if matter_code is not None:
        m = conn.execute(select(t.matters.c.category).where(t.matters.c.code == matter_code)).first()
        if m is None:
            raise ApiError(422, "unknown_matter", {"matter_code": matter_code})
        values["matter_code"] = matter_code
    new_priority = priority or tk["priority"]
    values["priority"] = new_priority
    # queued_at is unchanged: the ticket keeps its place.
    values["sort_key"] = sort_key(new_priority, int(tk["queued_ms"]))
    out = _update_ticket(conn, ticket_id, **values)
    if reason:  # said by the clerk: kept for IT in the log, and for the next window in the case
        log.info("ticket %s transferred by %s: %s", tk["number"], p.staff_no, reason[:200])
    if reason and tk["case_id"] is not None:
        c = conn.execute(select(t.cases.c.notes).where(t.cases.c.id == tk["case_id"])).scalar_one()
        conn.execute(t.cases.update().where(t.cases.c.id == tk["case_id"])
                     .values(notes=(c + "\n转移原因 / transfer reason: " + reason).strip()))
    _set_current(conn, tk["window_no"], None)
    _emit_ticket(tx, "ticket.transferred", out)
    return out


def suspend(tx: Tx, hall: Hall, p: Principal, ticket_id: int, note: str) -> JSON:
    conn = tx.conn
    tk = load_ticket(conn, ticket_id, for_update=True)
    _own_ticket(p, tk, "serving")
    out = _update_ticket(conn, ticket_id, state="suspended")
    if note and tk["case_id"] is not None:
        c = conn.execute(select(t.cases.c.notes).where(t.cases.c.id == tk["case_id"])).scalar_one()
        conn.execute(
            t.cases.update().where(t.cases.c.id == tk["case_id"]).values(notes=(c + "\n" + note).strip())
        )
    _set_current(conn, tk["window_no"], None)
    _emit_ticket(tx, "ticket.suspended", out)
    return out


def resume(tx: Tx, hall: Hall, p: Principal, ticket_id: int, window_no: int) -> JSON:
    acting_window(p, window_no)
    conn = tx.conn
    tk = load_ticket(conn, ticket_id, for_update=True)
    if tk["state"] != "suspended":
        raise ApiError(409, "illegal_transition", {"state": tk["state"], "allowed_from": ["suspended"]})
    w = _ready_window(conn, window_no)
    if tk["category"] not in _cats(w) and tk["window_no"] != window_no:
        raise ApiError(409, "window_not_serving_category", {"category": tk["category"]})
    now = now_ms()
    out = _update_ticket(conn, ticket_id, state="serving", window_no=window_no, started_ms=now)
    if tk["case_id"] is not None:
        conn.execute(
            t.cases.update()
            .where(t.cases.c.id == tk["case_id"])
            .values(staff_no=p.staff_no, window_no=window_no)
        )
    _set_current(conn, window_no, ticket_id)
    _emit_ticket(tx, "ticket.resumed", out)
    return out


def return_to_queue(tx: Tx, hall: Hall, p: Principal, ticket_id: int) -> JSON:
    conn = tx.conn
    tk = load_ticket(conn, ticket_id, for_update=True)
    _own_ticket(p, tk, "called", "serving")
    out = _update_ticket(conn, ticket_id, state="waiting", window_no=None)
    _set_current(conn, tk["window_no"], None)
    _emit_ticket(tx, "ticket.returned", out)
    return out


def complete(tx: Tx, hall: Hall, p: Principal, ticket_id: int, outcome: str, note: str, reason: str) -> JSON:
    conn = tx.conn
    tk = load_ticket(conn, ticket_id, for_update=True)
    _own_ticket(p, tk, "called", "serving")
    if outcome == "rejected" and not reason.strip():
        raise ApiError(422, "validation_error", {"errors": [{"field": "reason", "message": "a rejection needs a reason"}]})
    now = now_ms()
    new_day = None
    mats = None
    values: dict[str, Any] = {"state": "completed", "finished_ms": now}
    if tk["state"] == "called":
        _, case_id, new_day, mats = _start(tx, hall, p, tk, now, update=False)
        values.update(started_ms=now, case_id=case_id)
    else:
        case_id = int(tk["case_id"])
    out = _update_ticket(conn, ticket_id, free_window=tk["window_no"], **values)
    # The deadline, the conclusion at the window and on-time/on-the-spot: lifecycle.py.
    life = window_close_values(conn, tk["matter_code"], outcome, hall.day_of(now), now, p.staff_no)
    row = run(conn, _CLOSE_CASE_SQL, {
        "now": now, "outcome": outcome, "note": note, "reason": reason, "id": case_id, **life,
    }).first()
    _emit_ticket(tx, "ticket.completed", out)
    return {"ticket": out, "case": _case_out(conn, hall, case_id, new_day, row, mats)}


_CLOSE_CASE_SQL = (
    "UPDATE cases SET completed_ms = :now, outcome = :outcome, outcome_note = :note, "  # noqa: S608
    "reason = :reason, on_time = :on_time, time_limit_days = :time_limit_days, "
    "deadline_day = :deadline_day, conclusion = :conclusion, concluded_day = :concluded_day, "
    "concluded_ms = :concluded_ms, concluded_by = :concluded_by, on_the_spot = :on_the_spot "
    f"WHERE id = :id RETURNING {CASE_COLS}"
)


# ---- reads -------------------------------------------------------------------------------
def queue_snapshot(conn: Connection, window_no: int) -> JSON:
    w = load_window(conn, window_no)
    cats = _cats(w)
    now = now_ms()
    due = now + APPOINTMENT_LEAD_MS
    eligible = (t.tickets.c.target_window_no == window_no) | (
        t.tickets.c.target_window_no.is_(None) & t.tickets.c.category.in_(cats)
    )
    waiting = [
        ticket_json(r)
        for r in conn.execute(
            select(*TICKET_COLS).where(t.tickets.c.state == "waiting", eligible)
        ).mappings()
    ]

    def order(tk: JSON) -> tuple[int, str, int]:
        rank = {"green": 0, "appointment": 1, "normal": 2}[tk["priority"]]
        if rank == 1 and not (tk["appointment_at"] and _iso_to_ms(tk["appointment_at"]) <= due):
            rank = 2
        return rank, tk["queued_at"], tk["id"]

    waiting.sort(key=order)
    suspended = [
        ticket_json(r)
        for r in conn.execute(
            select(*TICKET_COLS)
            .where(
                t.tickets.c.state == "suspended",
                t.tickets.c.category.in_(cats) | (t.tickets.c.window_no == window_no),
            )
            .order_by(t.tickets.c.queued_ms)
        ).mappings()
    ]
    current = None
    if w["current_ticket_id"] is not None:
        current = ticket_json(load_ticket(conn, int(w["current_ticket_id"])))
    return {"window": window_out(conn, w), "current": current, "waiting": waiting, "suspended": suspended}


def _iso_to_ms(s: str) -> int:
    from datetime import datetime

    return int(datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp() * 1000)


def hall_code(conn: Connection) -> str:
    return get_meta(conn, "hall_code") or "HALL"
