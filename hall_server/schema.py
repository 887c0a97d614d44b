"""The database tables (SQLAlchemy Core). Alembic migrations in `migrations/` create them.

Times are stored as UTC epoch milliseconds (BigInteger): portable between SQLite and
PostgreSQL, cheap to compare and sort, and formatted as ISO 8601 only at the edge.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    false,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

meta = Table(
    "meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

staff = Table(
    "staff",
    metadata,
    Column("staff_no", String(32), primary_key=True),
    Column("name_zh", String(100), nullable=False),
    Column("name_en", String(100), nullable=False),
    Column("role", String(16), nullable=False),
    Column("password_hash", String(200), nullable=False),
    Column("disabled", Boolean, nullable=False, default=False),
    Column("window_no", Integer, nullable=True),
    Column("photo", LargeBinary, nullable=True),
)

sessions = Table(
    "sessions",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("staff_no", String(32), ForeignKey("staff.staff_no"), nullable=False),
    Column("window_no", Integer, nullable=True),
    Column("refresh_hash", String(64), nullable=False, unique=True),
    Column("created_ms", BigInteger, nullable=False),
    Column("refresh_expires_ms", BigInteger, nullable=False),
    Column("closed_ms", BigInteger, nullable=True),
    Column("device_id", String(40), nullable=True),
)

devices = Table(
    "devices",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("secret_hash", String(64), nullable=False),
    Column("window_no", Integer, nullable=False),
    Column("hostname", String(200), nullable=False),
    Column("enrolled_ms", BigInteger, nullable=False),
    Column("revoked", Boolean, nullable=False, default=False),
)

enrollment_codes = Table(
    "enrollment_codes",
    metadata,
    Column("code", String(40), primary_key=True),
    Column("window_no", Integer, nullable=False),
    Column("expires_ms", BigInteger, nullable=False),
    Column("used_ms", BigInteger, nullable=True),
)

categories = Table(
    "categories",
    metadata,
    Column("code", String(8), primary_key=True),
    Column("name_zh", String(100), nullable=False),
    Column("name_en", String(100), nullable=False),
)

windows = Table(
    "windows",
    metadata,
    Column("no", Integer, primary_key=True, autoincrement=False),
    Column("name_zh", String(100), nullable=False),
    Column("name_en", String(100), nullable=False),
    Column("categories", String(200), nullable=False, default=""),  # comma-separated codes
    Column("state", String(16), nullable=False, default="closed"),
    Column("pause_reason_code", String(32), nullable=True),
    Column("staff_no", String(32), nullable=True),
    Column("session_id", String(40), nullable=True),
    Column("current_ticket_id", BigInteger, nullable=True),
)

pause_reasons = Table(
    "pause_reasons",
    metadata,
    Column("code", String(32), primary_key=True),
    Column("name_zh", String(100), nullable=False),
    Column("name_en", String(100), nullable=False),
    Column("public_zh", String(200), nullable=False),
    Column("public_en", String(200), nullable=False),
)

matters = Table(
    "matters",
    metadata,
    Column("code", String(64), primary_key=True),
    Column("name_zh", String(300), nullable=False),
    Column("name_en", String(300), nullable=False),
    Column("department_zh", String(200), nullable=False),
    Column("department_en", String(200), nullable=False),
    Column("category", String(8), nullable=False),
    Column("time_limit_days", Integer, nullable=False),
    Column("instant", Boolean, nullable=False),
    Column("cross_region", Boolean, nullable=False),
    Column("version", BigInteger, nullable=False, index=True),
    Column("deleted", Boolean, nullable=False, default=False),
)

checklist_items = Table(
    "checklist_items",
    metadata,
    Column("matter_code", String(64), ForeignKey("matters.code"), primary_key=True),
    Column("id", String(64), primary_key=True),
    Column("position", Integer, nullable=False),
    Column("name_zh", String(300), nullable=False),
    Column("name_en", String(300), nullable=False),
    Column("requirement", String(20), nullable=False),
    Column("copies", Integer, nullable=False),
    Column("original_required", Boolean, nullable=False),
    Column("e_licence", Boolean, nullable=False),
    Column("notes_zh", Text, nullable=False, default=""),
    Column("notes_en", Text, nullable=False, default=""),
)

# Daily counters for ticket numbers (scope = category code) and case numbers (scope = "case").
counters = Table(
    "counters",
    metadata,
    Column("scope", String(16), primary_key=True),
    Column("day", String(10), primary_key=True),
    Column("n", Integer, nullable=False),
)

tickets = Table(
    "tickets",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("number", String(16), nullable=False),
    Column("category", String(8), nullable=False),
    Column("matter_code", String(64), nullable=True),
    Column("priority", String(16), nullable=False),
    Column("appointment_ms", BigInteger, nullable=True),
    Column("state", String(16), nullable=False),
    Column("window_no", Integer, nullable=True),
    Column("target_window_no", Integer, nullable=True),
    Column("issued_ms", BigInteger, nullable=False),
    Column("queued_ms", BigInteger, nullable=False),
    Column("called_ms", BigInteger, nullable=True),
    Column("first_called_ms", BigInteger, nullable=True),
    Column("started_ms", BigInteger, nullable=True),
    Column("finished_ms", BigInteger, nullable=True),
    Column("recalls", Integer, nullable=False, default=0),
    Column("case_id", BigInteger, nullable=True),
    # rank * 10**13 + queued_ms: one index walk gives the call order (see queue.py).
    Column("sort_key", BigInteger, nullable=False),
    Column("day", String(10), nullable=False),
    Index("ix_tickets_state_sort", "state", "sort_key"),
    Index("ix_tickets_day", "day"),
)

cases = Table(
    "cases",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("case_no", String(40), nullable=False, unique=True),
    Column("ticket_id", BigInteger, nullable=True),
    Column("matter_code", String(64), nullable=True),
    Column("staff_no", String(32), nullable=False),
    Column("window_no", Integer, nullable=False),
    Column("started_ms", BigInteger, nullable=False),
    Column("completed_ms", BigInteger, nullable=True),
    Column("outcome", String(16), nullable=True),
    Column("outcome_note", Text, nullable=False, default=""),
    Column("reason", Text, nullable=False, default=""),
    Column("notes", Text, nullable=False, default=""),
    Column("on_time", Boolean, nullable=True),
    Column("day", String(10), nullable=False),
    Index("ix_cases_day", "day"),
)

case_materials = Table(
    "case_materials",
    metadata,
    Column("case_id", BigInteger, ForeignKey("cases.id"), primary_key=True),
    Column("item_id", String(64), primary_key=True),
    Column("position", Integer, nullable=False),
    Column("status", String(20), nullable=False),
    Column("note", Text, nullable=False, default=""),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("key", String(200), primary_key=True),  # permanent: the primary key is the dedupe
    Column("fingerprint", String(64), nullable=False),
    Column("status_code", Integer, nullable=True),
    Column("body", Text, nullable=True),
    Column("created_ms", BigInteger, nullable=False),
)

rating_reasons = Table(
    "rating_reasons",
    metadata,
    Column("code", String(32), primary_key=True),
    Column("version", String(64), nullable=False),
    Column("position", Integer, nullable=False),
    Column("text_zh", String(300), nullable=False),
    Column("text_en", String(300), nullable=False),
)

rating_challenges = Table(
    "rating_challenges",
    metadata,
    Column("case_id", BigInteger, ForeignKey("cases.id"), primary_key=True),
    Column("challenge", String(64), nullable=False),
    Column("issued_ms", BigInteger, nullable=False),
    Column("closed_ms", BigInteger, nullable=True),  # set when a signed rating used it (0002)
)

ratings = Table(
    "ratings",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("case_id", BigInteger, ForeignKey("cases.id"), nullable=False, unique=True),  # 一次一评
    Column("window_no", Integer, nullable=False),
    Column("level", String(20), nullable=False),
    Column("reasons", Text, nullable=False),  # JSON list of codes
    Column("reasons_version", String(64), nullable=False),
    Column("comment", Text, nullable=False),
    Column("source", String(16), nullable=False),
    Column("rated_ms", BigInteger, nullable=False),
    Column("received_ms", BigInteger, nullable=False),
    Column("pad_id", String(64), nullable=True),
    Column("pad_counter", BigInteger, nullable=True),
    Column("challenge", String(64), nullable=True),
    Column("signature", Text, nullable=True),
    Column("assurance", String(16), nullable=False),
    Column("bad", Boolean, nullable=False),
    Column("followed_up", Boolean, nullable=False, default=False),
    Column("day", String(10), nullable=False),
    Index("ix_ratings_window_day", "window_no", "day"),
)

uploads = Table(
    "uploads",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("case_id", BigInteger, ForeignKey("cases.id"), nullable=False),
    Column("item_id", String(64), nullable=False),
    Column("filename", String(300), nullable=False),
    Column("content_type", String(100), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("offset", BigInteger, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("document_id", String(40), nullable=True),
)

documents = Table(
    "documents",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("upload_id", String(40), nullable=False, unique=True),
    Column("case_id", BigInteger, ForeignKey("cases.id"), nullable=False),
    Column("item_id", String(64), nullable=False),
    Column("filename", String(300), nullable=False),
    Column("content_type", String(100), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("path", String(500), nullable=False),
    Column("received_ms", BigInteger, nullable=False),
)

events = Table(
    "events",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("type", String(32), nullable=False),
    Column("at_ms", BigInteger, nullable=False),
    Column("window_no", Integer, nullable=True),
    Column("category", String(8), nullable=True),
    Column("target_window_no", Integer, nullable=True),
    Column("data", Text, nullable=False),
)


# ---- evaluator pads (migration 0002; see hall_server/pads.py) --------------------------------
pad_pairings = Table(
    "pad_pairings",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("token_hash", String(64), nullable=False, unique=True),  # sha256 of the one-time token
    Column("code_hash", String(64), nullable=False),  # sha256(id + code): never key material
    Column("window_no", Integer, nullable=False),
    Column("created_by", String(32), nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("expires_ms", BigInteger, nullable=False),
    Column("used_ms", BigInteger, nullable=True),
    Column("code_attempts", Integer, nullable=False, default=0),
    Index("ix_pad_pairings_window", "window_no"),
)

pads = Table(
    "pads",
    metadata,
    Column("pad_id", String(64), primary_key=True),
    Column("window_no", Integer, nullable=False),
    Column("public_key", String(64), nullable=False),  # Ed25519 raw key, base64url
    Column("alg", String(16), nullable=False),
    Column("paired_ms", BigInteger, nullable=False),
    Column("paired_by", String(32), nullable=False),
    Column("unpaired_ms", BigInteger, nullable=True),
    Column("last_counter", BigInteger, nullable=False, default=0),
    Column("gaps", Integer, nullable=False, default=0),
    Index("ix_pads_window", "window_no"),
)

pad_flags = Table(
    "pad_flags",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("pad_id", String(64), nullable=False),
    Column("window_no", Integer, nullable=False),
    Column("kind", String(32), nullable=False),  # "counter_gap"
    Column("rating_id", String(64), nullable=True),
    Column("details", Text, nullable=False),  # JSON
    Column("at_ms", BigInteger, nullable=False),
)


# ---- event log in commit order (migration 0005; see hall_server/db.py Tx.flush_and_commit) --
# One row (id = 1): the last event id handed out. On PostgreSQL every transaction with events
# bumps it right before COMMIT, so event ids follow commit order with no holes.
event_counter = Table(
    "event_counter",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("last_id", BigInteger, nullable=False),
)
Index("ix_events_at_ms", events.c.at_ms)

# ---- hall set-up and administration (migration 0006; see hall_server/admin.py) ---------------
# Every administrative change (API, CLI, init) writes one row: who, when, what, before/after.
audit_log = Table(
    "audit_log",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("at_ms", BigInteger, nullable=False),
    Column("actor", String(64), nullable=False),  # staff_no, or "cli:<os user>"
    Column("action", String(64), nullable=False),  # e.g. "staff.reset_password"
    Column("target", String(200), nullable=False),
    Column("before", Text, nullable=True),  # JSON, never a secret
    Column("after", Text, nullable=True),
    Index("ix_audit_log_at", "at_ms"),
)

# The working calendar: only the exceptions to Monday-Friday (see hall_server/workdays.py).
calendar_days = Table(
    "calendar_days",
    metadata,
    Column("day", String(10), primary_key=True),  # YYYY-MM-DD
    Column("kind", String(8), nullable=False),  # "holiday" (weekday off) | "workday" (make-up)
    Column("name_zh", String(100), nullable=False),
    Column("name_en", String(100), nullable=False),
    Column("year", Integer, nullable=False),
)

# staff.must_change_password (0006): set by a password reset; login answers 403
# password_change_required until the staff member has chosen a new password.
staff.append_column(Column("must_change_password", Boolean, nullable=False, default=False,
                           server_default=false()))

# ---- the applicant on a case (migration 0007; see hall_server/applicants.py) -----------------
# Every personal field lives only inside `data_enc` (AES-GCM under a key outside the database,
# named by `key_id`); lookups go through keyed hashes (HMAC), never through plaintext.
case_applicants = Table(
    "case_applicants",
    metadata,
    Column("case_id", BigInteger, ForeignKey("cases.id"), primary_key=True),
    Column("key_id", String(32), nullable=False),
    Column("data_enc", Text, nullable=False),  # base64(nonce | ciphertext+tag) of the JSON fields
    Column("id_hash", String(64), nullable=True),  # HMAC of the normalised document number
    Column("phone_hash", String(64), nullable=True),  # HMAC of the normalised phone number
    Column("green_suggested", Boolean, nullable=False, default=False),
    Column("updated_ms", BigInteger, nullable=False),
    Column("updated_by", String(32), nullable=False),
    Index("ix_case_applicants_id_hash", "id_hash"),
    Index("ix_case_applicants_phone_hash", "phone_hash"),
)

applicant_audit = Table(
    "applicant_audit",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("case_id", BigInteger, nullable=True),  # no FK: the audit outlives purged applicants
    Column("action", String(16), nullable=False),  # put, reveal, search, purge, rotate
    Column("staff_no", String(32), nullable=False),  # "cli" for the IT commands
    Column("window_no", Integer, nullable=True),
    Column("purpose", Text, nullable=False),
    Column("at_ms", BigInteger, nullable=False),
    Index("ix_applicant_audit_case", "case_id"),
)

# ---- pad trust chain (migration 0004; see hall_server/pads.py, hall_server/rate_later.py) ------
# A pairing holds the key a pad registered until a supervisor confirms its fingerprint.
pad_pairings.append_column(Column("pad_id", String(64), nullable=True))
pad_pairings.append_column(Column("public_key", String(64), nullable=True))
pad_pairings.append_column(Column("confirmed_ms", BigInteger, nullable=True))
pad_pairings.append_column(Column("confirmed_by", String(32), nullable=True))
pad_pairings.append_column(Column("rejected_ms", BigInteger, nullable=True))
pads.append_column(Column("last_seen_ms", BigInteger, nullable=True))  # last proven poll
Index("ix_rating_challenges_issued", rating_challenges.c.issued_ms)

# Every time a rate-later link left the server: to the pad (proven), a desk or a supervisor.
rate_later_issues = Table(
    "rate_later_issues",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("case_id", BigInteger, nullable=False),
    Column("issued_to", String(16), nullable=False),  # "pad" | "desk" | "supervisor"
    Column("staff_no", String(32), nullable=True),
    Column("pad_id", String(64), nullable=True),
    Column("at_ms", BigInteger, nullable=False),
    Index("ix_rate_later_issues_case", "case_id"),
)

# ---- server hardening (migration 0003; see security.py, core.mutate, documents.py) ----------
# Sign-in limits shared by every server process: one row per bucket ("staff:<no>", "addr:<ip>",
# "global"), counting failures in a fixed window that starts at the bucket's first attempt.
rate_limits = Table(
    "rate_limits",
    metadata,
    Column("bucket", String(120), primary_key=True),
    Column("window_start_ms", BigInteger, nullable=False),
    Column("n", Integer, nullable=False),
    Index("ix_rate_limits_window_start", "window_start_ms"),
)
# Sign-in attempts being checked right now, one row per bucket (security.count_attempt).
rate_pending = Table(
    "rate_pending",
    metadata,
    Column("attempt", String(32), primary_key=True),
    Column("bucket", String(120), primary_key=True),
    Column("at_ms", BigInteger, nullable=False),
    Index("ix_rate_pending_bucket_at", "bucket", "at_ms"),
)
# An Idempotency-Key is unique per caller: the primary key becomes (scope, key).
idempotency_keys.append_column(Column("scope", String(80), primary_key=True, nullable=False, default=""))
# Sessions are stored under security.session_key(id); the id itself only sealed under the
# server secret (to issue refreshed tokens carrying the same id).
sessions.append_column(Column("sid_sealed", String(200), nullable=True))
# The server's receipt time dates unsigned ratings (rated_ms, day); the desk's claim is kept here.
ratings.append_column(Column("claimed_rated_ms", BigInteger, nullable=True))
# Length of the (encrypted) upload file at the committed offset.
uploads.append_column(Column("stored_bytes", BigInteger, nullable=False, default=0))
# "aesgcm-v1" for documents stored encrypted; NULL for a document stored before 0003.
documents.append_column(Column("encryption", String(16), nullable=True))

# ---- 0012: pad proofs shared by every server process --------------------------------------------
# A pad's proof (its signature over pad id and clock, pad_guard.check_proof) is good once in the
# whole hall, not once per process: each proof seen is a row (the primary key refuses a replay
# at any process), and pads.newest_proof_ms bounds how far behind the newest a proof may trail.
# Rows behind that window are pruned hourly with the events.
pad_proofs = Table(
    "pad_proofs",
    metadata,
    Column("pad_id", String(64), primary_key=True),
    Column("pad_time", BigInteger, primary_key=True),
    Column("seen_ms", BigInteger, nullable=False),
    Index("ix_pad_proofs_seen", "seen_ms"),
)
pads.append_column(Column("newest_proof_ms", BigInteger, nullable=True))

# ---- provisioning and operations (migration 0011; see hall_server/heartbeat.py) ------------
# When the session's desk was last heard from (any signed-in request or its live stream),
# written at most once a minute per session and process; windows whose desk went silent are
# closed by the server (Settings.stale_window_seconds).
sessions.append_column(Column("last_seen_ms", BigInteger, nullable=True))

# ---- case lifecycle after the window, rating channels (migration 0008; see lifecycle.py) -----
# An accepted (受理) case's promised deadline in working days, and its conclusion (办结) by the
# back office; `on_time` is set only when the case is concluded (concluded_day <= deadline_day).
cases.append_column(Column("time_limit_days", Integer, nullable=True))
cases.append_column(Column("deadline_day", String(10), nullable=True))  # YYYY-MM-DD
cases.append_column(Column("conclusion", String(16), nullable=True))  # approved|refused|withdrawn
cases.append_column(Column("concluded_day", String(10), nullable=True))
cases.append_column(Column("concluded_ms", BigInteger, nullable=True))
cases.append_column(Column("concluded_by", String(32), nullable=True))
cases.append_column(Column("on_the_spot", Boolean, nullable=True))
Index("ix_cases_open_deadline", cases.c.conclusion, cases.c.deadline_day)
# Paper-form and phone-survey ratings: who entered them, and the scanned form (documents.id).
ratings.append_column(Column("entered_by", String(32), nullable=True))
ratings.append_column(Column("form_document_id", String(40), nullable=True))

# ---- bad-rating follow-ups, appeals, provincial push (migration 0009; see hall_server/followups.py,
# hall_server/rating_export.py). An upheld appeal excludes a rating from every figure; it is never deleted.
ratings.append_column(Column("excluded_from_figures", Boolean, nullable=False, default=False,
                             server_default=false()))

followups = Table(
    "followups",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("rating_id", String(64), ForeignKey("ratings.id"), nullable=False, unique=True),
    Column("case_id", BigInteger, nullable=False),
    Column("window_no", Integer, nullable=False),
    # open -> assigned -> called_back -> verified -> (rectified) -> answered -> closed
    Column("state", String(16), nullable=False),
    Column("opened_ms", BigInteger, nullable=False),
    Column("due_day", String(10), nullable=False),  # last working day (hall rule, calendar)
    Column("assignee", String(32), nullable=True),
    Column("valid", Boolean, nullable=True),  # the verification's finding
    Column("callback_attempts", Integer, nullable=False, default=0, server_default="0"),
    Column("reached", Boolean, nullable=True),  # the last call-back reached the citizen
    Column("closed_ms", BigInteger, nullable=True),  # the supervisor's accepting review
    Column("updated_ms", BigInteger, nullable=False),
    Index("ix_followups_state_due", "state", "due_day"),
    Index("ix_followups_window", "window_no"),
)

# Every step of a follow-up, in order: the timeline (and, with audit_log, who did what when).
followup_steps = Table(
    "followup_steps",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("followup_id", BigInteger, nullable=False),
    Column("step", String(16), nullable=False),
    Column("actor", String(64), nullable=False),
    Column("at_ms", BigInteger, nullable=False),
    Column("data", Text, nullable=False),  # JSON
    Index("ix_followup_steps_followup", "followup_id"),
)

appeals = Table(
    "appeals",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("rating_id", String(64), ForeignKey("ratings.id"), nullable=False, unique=True),  # one appeal
    Column("window_no", Integer, nullable=False),
    Column("filed_by", String(32), nullable=False),
    Column("filed_ms", BigInteger, nullable=False),
    Column("reason", Text, nullable=False),
    Column("evidence", Text, nullable=False),  # JSON list of document ids of the rating's case
    Column("state", String(16), nullable=False),  # pending | upheld | rejected
    Column("decided_by", String(32), nullable=True),
    Column("decided_ms", BigInteger, nullable=True),
    Column("decision_note", Text, nullable=False, default="", server_default=""),
    Index("ix_appeals_window_state", "window_no", "state"),
)

# The durable queue to the provincial platform: one row per record, keyed by its idempotency key.
rating_push_outbox = Table(
    "rating_push_outbox",
    metadata,
    Column("key", String(120), primary_key=True),
    Column("kind", String(16), nullable=False),  # rating | followup
    Column("record", Text, nullable=False),  # the JSON sent, frozen when queued
    Column("created_ms", BigInteger, nullable=False),
    Column("attempts", Integer, nullable=False, default=0, server_default="0"),
    Column("next_attempt_ms", BigInteger, nullable=False),
    Column("lease_until_ms", BigInteger, nullable=True),  # a worker is sending it until then
    Column("sent_ms", BigInteger, nullable=True),
    Column("last_error", Text, nullable=False, default="", server_default=""),
    Index("ix_rating_push_outbox_due", "sent_ms", "next_attempt_ms"),
)

# ---- result mailing (issue 17, migration 0010; hall_server/mailing.py) -------------------------
# Recipient, phone, address and tracking number are one AES-GCM ciphertext under the applicant keys.
case_mailings = Table(
    "case_mailings",
    metadata,
    Column("case_id", BigInteger, ForeignKey("cases.id"), primary_key=True),
    Column("key_id", String(32), nullable=False),
    Column("data_enc", Text, nullable=False),
    Column("status", String(16), nullable=False),  # to_mail | mailed
    Column("mailed_ms", BigInteger, nullable=True),
    Column("updated_ms", BigInteger, nullable=False),
    Column("updated_by", String(32), nullable=False),
)
