"""Typed server settings with their defaults, in one place (CLI flags and tests fill them)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Rules:
    """Queue and rating rules a hall may tune (served to desks as `Rules`)."""

    recall_limit: int = 3
    no_show_min_recalls: int = 2
    no_show_min_seconds: int = 120
    rate_later_days: int = 5

    def to_json(self) -> dict[str, int]:
        return {
            "recall_limit": self.recall_limit,
            "no_show_min_recalls": self.no_show_min_recalls,
            "no_show_min_seconds": self.no_show_min_seconds,
            "rate_later_days": self.rate_later_days,
        }


@dataclass(frozen=True)
class Settings:
    """Everything `create_app` needs. `db_url` None means a SQLite file in `data_dir`."""

    data_dir: Path = field(default_factory=lambda: Path("var"))
    db_url: str | None = None
    demo: bool = False
    demo_history: bool = False  # with demo: seed a month of past cases and ratings (demo_history.py)
    arrival_rate: float = 0.0  # tickets per minute issued by the demo simulator; 0 = off
    seed: int = 1
    require_device: bool = False
    # The address citizens' phones reach (rate-later links); empty: the address the desk used.
    public_url: str = ""
    access_token_seconds: int = 900
    refresh_token_seconds: int = 12 * 3600
    enrollment_code_seconds: int = 24 * 3600
    rules: Rules = field(default_factory=Rules)
    timezone: str = "Asia/Shanghai"
    max_json_bytes: int = 1 * 1024 * 1024
    max_import_bytes: int = 32 * 1024 * 1024
    max_chunk_bytes: int = 16 * 1024 * 1024
    max_upload_bytes: int = 50 * 1024 * 1024
    login_failure_limit: int = 5  # failed sign-ins per staff number per window (then 429)
    login_failure_window_s: int = 600
    # Failed sign-ins per client address and hall-wide in the same window: guessing across many
    # staff numbers is stopped too, and the limits table stays bounded. Behind a proxy the
    # address is the proxy's unless uvicorn trusts its X-Forwarded-For (docs/deploy.md).
    login_address_limit: int = 30
    login_global_limit: int = 300
    # The server secret (token signing, sealed replies, document encryption): never in the
    # database. None: $HALL_SECRET_FILE, else `secret.key` in data_dir. Every process of one
    # hall must use the same secret (the server refuses to start with another one).
    secret_file: Path | None = None
    # Swagger UI / ReDoc pages load their scripts from a CDN: off unless True (or, when None,
    # $HALL_API_DOCS=1 on a developer's machine); /openapi.json is always served.
    api_docs: bool | None = None
    max_streams_per_session: int = 4  # live /events streams one session may hold open
    event_keep_seconds: int = 24 * 3600
    ping_seconds: float = 15.0
    pad_pairing_seconds: int = 120  # a pad pairing token/code lives this long (pads.py)
    pad_code_attempts: int = 5  # wrong 6-digit codes allowed per pairing
    # The applicant on a case (applicants.py): records kept this long after the case, then purged
    # by `hall-server purge-applicants`; the green channel is suggested from this age.
    applicant_retention_days: int = 180
    green_channel_age: int = 65

    # A registered pad key waits this long for the supervisor's fingerprint confirmation.
    pad_confirm_seconds: int = 600
    # The pad shows an open rating request this long, then the rate-later QR for
    # `pad_not_rated_seconds`, then the idle card again (pad_site.py); a rating is thanked
    # for `pad_thanks_seconds`.
    pad_rating_seconds: int = 90
    pad_not_rated_seconds: int = 30
    pad_thanks_seconds: int = 5
    # The pad's rating period restarts at every touch of the citizen (POST /pad/api/touch); the
    # last `pad_warn_seconds` show a large countdown with "还需要时间吗？" (pad.js).
    pad_warn_seconds: int = 20
    # Each citizen starts with read-aloud on and high contrast off (the citizen may switch
    # either); a hall "fixes" them by setting these (every citizen then starts that way).
    pad_speak: bool = True
    pad_high_contrast: bool = False
    # Host names the pad page and its API answer to, besides the public_url's host and
    # loopback (a DNS-rebinding page under another name gets 421).
    pad_hosts: tuple[str, ...] = ()
    pad_max_polls_per_address: int = 4  # waiting long-polls per client address (pad_site.py)
    # Run Alembic `upgrade head` when the app starts (the CLI `migrate` does it alone).
    migrate_on_start: bool = True
    # Hall rule (heartbeat.py): an open window whose desk has not been heard from (any signed-in
    # request, or the pings of its live stream) for this long is closed; 0 turns the rule off.
    stale_window_seconds: int = 600
    stale_check_seconds: float = 30.0

    def database_url(self) -> str:
        if self.db_url:
            return self.db_url
        env = os.environ.get("HALL_DB_URL")
        if env:
            return env
        return f"sqlite:///{(self.data_dir / 'hall.sqlite3').resolve()}"
