"""Issue 11 item 2: sessions and limits are shared by every server process of one database. A
sign-out or a disabled account is seen by the other process at once (no per-process cache), and
the sign-in limit counts failures made through any process."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.server_fixtures import (
    Api,
    RunningServer,
    drop_pg_db,
    fresh_pg_url,
    signed_in,
    start_server_thread,
)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def two_servers(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[RunningServer, RunningServer]]:
    """Two server instances (each with its own process state) on one database and one secret."""
    url: str | None = None
    if request.param == "postgresql":
        base = os.environ.get("HALL_TEST_PG_URL")
        if not base:
            pytest.skip("HALL_TEST_PG_URL not set")
        url = fresh_pg_url(base)
        a = start_server_thread(db_url=url, data_dir=tmp_path / "a", demo=True, secret_file=tmp_path / "secret.key")
        b = start_server_thread(db_url=url, data_dir=tmp_path / "b", demo=True, secret_file=tmp_path / "secret.key")
    else:
        a = start_server_thread(data_dir=tmp_path / "hall", demo=True)
        b = start_server_thread(data_dir=tmp_path / "hall", demo=True, migrate_on_start=False)
    try:
        yield a, b
    finally:
        a.stop()
        b.stop()
        if url:
            drop_pg_db(url)


def test_logout_through_one_process_ends_the_session_in_the_other(
    two_servers: tuple[RunningServer, RunningServer],
) -> None:
    a, b = two_servers
    desk = signed_in(a.url, "1001", 1)
    on_b = Api(b.url, desk.token)
    assert on_b.get("/me").status_code == 200  # b has seen (and, before, cached) the session
    assert desk.post("/auth/logout").status_code == 204
    assert on_b.get("/me").status_code == 401  # before: 200 for up to 5 s from b's cache


def test_disabling_through_one_process_ends_the_session_in_the_other(
    two_servers: tuple[RunningServer, RunningServer],
) -> None:
    a, b = two_servers
    clerk = signed_in(a.url, "1002")
    on_b = Api(b.url, clerk.token)
    assert on_b.get("/me").status_code == 200
    assert clerk.get("/me").status_code == 200  # a has seen (and, before, cached) it too
    it = signed_in(b.url, "9001")
    assert it.s.patch(b.url + "/api/v1/admin/staff/1002", json={"disabled": True},
                      headers=it.headers()).status_code == 200
    assert Api(a.url, clerk.token).get("/me").status_code == 401  # before: a's cache said alive


def test_the_login_limit_counts_failures_of_every_process(
    two_servers: tuple[RunningServer, RunningServer],
) -> None:
    a, b = two_servers
    codes = [Api(srv.url).post("/auth/login", json={"staff_no": "1003", "password": "nope"}).status_code
             for srv in (a, b, a, b, a, b, a, b)]
    assert codes.count(401) == 5 and codes[5:] == [429, 429, 429], codes  # before: 8 x 401
