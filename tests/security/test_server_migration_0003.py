"""Migration 0003 on a database that was in use: session ids become hashes (in `sessions` and
`windows`), old idempotency rows get a scope nobody has, unfinished plain uploads restart at 0."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine, text

from hall_server.db import upgrade
from hall_server.security import session_key


def test_upgrade_from_0002_with_data(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    upgrade(url, "0002")
    eng = create_engine(url)
    try:
        with eng.begin() as c:
            c.execute(text("INSERT INTO staff (staff_no, name_zh, name_en, role, password_hash, disabled) "
                           "VALUES ('1001', '甲', 'A', 'staff', 'x', false)"))
            c.execute(text("INSERT INTO sessions (id, staff_no, window_no, refresh_hash, created_ms, "
                           "refresh_expires_ms) VALUES ('plain-session-id', '1001', 1, 'r', 0, 1)"))
            c.execute(text("INSERT INTO windows (no, name_zh, name_en, categories, state, staff_no, session_id) "
                           "VALUES (1, '一', 'One', 'A', 'open', '1001', 'plain-session-id')"))
            c.execute(text("INSERT INTO idempotency_keys (key, fingerprint, status_code, body, created_ms) "
                           "VALUES ('k1', 'f', 200, '{}', 0)"))
            c.execute(text("INSERT INTO cases (case_no, staff_no, window_no, started_ms, outcome_note, reason, "
                           "notes, day) VALUES ('C1', '1001', 1, 0, '', '', '', '2026-12-01')"))
            c.execute(text('INSERT INTO uploads (id, case_id, item_id, filename, content_type, size, sha256, '
                           '"offset", created_ms) VALUES (\'u1\', 1, \'i\', \'a.pdf\', \'application/pdf\', 10, '
                           '\'00\', 5, 0)'))
        upgrade(url)
        with eng.connect() as c:
            assert c.execute(text("SELECT id FROM sessions")).scalar() == session_key("plain-session-id")
            assert c.execute(text("SELECT session_id FROM windows")).scalar() == session_key("plain-session-id")
            assert c.execute(text("SELECT scope, key FROM idempotency_keys")).one() == ("", "k1")
            assert c.execute(text('SELECT "offset", stored_bytes FROM uploads')).one() == (0, 0)
    finally:
        eng.dispose()
