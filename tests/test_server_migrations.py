"""Schema and operations: Alembic upgrade from an empty database (SQLite, PostgreSQL), and the
`hall-server` IT subcommands (migrate, create/disable staff, window categories, enrollment code,
validated matters import with line numbers and nothing half-imported)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text

from hall_server.db import upgrade
from tests.support.server_fixtures import (
    REPO_ROOT,
    Api,
    drop_pg_db,
    fresh_pg_url,
    signed_in,
    start_server_process,
)

TABLES = {
    "staff", "sessions", "devices", "enrollment_codes", "windows", "categories", "pause_reasons",
    "matters", "checklist_items", "tickets", "cases", "case_materials", "idempotency_keys",
    "ratings", "rating_reasons", "rating_challenges", "uploads", "documents", "events", "meta",
    "counters", "alembic_version",
}


def _head() -> str:
    from alembic.script import ScriptDirectory

    from hall_server.db import alembic_config

    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert head is not None
    return head


def _check_schema(url: str) -> None:
    upgrade(url)
    eng = create_engine(url)
    try:
        insp = inspect(eng)
        assert TABLES <= set(insp.get_table_names())
        uniques = {tuple(u["column_names"]) for u in insp.get_unique_constraints("ratings")}
        assert ("case_id",) in uniques  # one rating per case is a constraint
        # permanent dedupe: the key, per caller (scope), is the primary key
        assert sorted(insp.get_pk_constraint("idempotency_keys")["constrained_columns"]) == ["key", "scope"]
        with eng.connect() as c:
            assert c.execute(text("SELECT version_num FROM alembic_version")).scalar() == _head()
    finally:
        eng.dispose()
    upgrade(url)  # a second run is a no-op


def test_alembic_upgrade_from_empty_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.sqlite3'}"
    _check_schema(url)
    eng = create_engine(url)
    with eng.connect() as c:
        assert c.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    eng.dispose()


@pytest.mark.postgres
def test_alembic_upgrade_from_empty_postgres() -> None:
    base = os.environ.get("HALL_TEST_PG_URL")
    if not base:
        pytest.skip("HALL_TEST_PG_URL not set")
    url = fresh_pg_url(base)
    try:
        _check_schema(url)
    finally:
        drop_pg_db(url)


def cli(data_dir: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    env.pop("HALL_DB_URL", None)
    return subprocess.run([sys.executable, "-m", "hall_server", *args, "--data-dir", str(data_dir)],
                          input=stdin, capture_output=True, text=True, timeout=120, env=env, cwd=str(REPO_ROOT))


def test_cli_subcommands(tmp_path: Path) -> None:
    data = tmp_path / "hall"
    r = cli(data, "migrate")
    assert r.returncode == 0, r.stderr
    # seed the demo hall through a real server process, then stop it hard
    srv = start_server_process(data)
    srv.kill()
    r = cli(data, "create-staff", "3001", "--name-zh", "张三", "--name-en", "Zhang San", "--password-stdin", stdin="s3cret-pass\n")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["staff_no"] == "3001"
    assert cli(data, "create-staff", "3001", "--name-zh", "x", "--password-stdin", stdin="s3cret-pass\n").returncode == 1
    assert cli(data, "set-window-categories", "2", "A", "B").returncode == 0
    bad = cli(data, "set-window-categories", "2", "Q")
    assert bad.returncode == 1 and "unknown_category" in bad.stderr
    code = json.loads(cli(data, "enrollment-code", "3").stdout)
    assert code["window_no"] == 3 and code["code"]
    assert cli(data, "disable-staff", "1002").returncode == 0

    good = tmp_path / "m.json"
    good.write_text(json.dumps([{"code": "CLI-1", "name_zh": "命令行事项", "category": "A", "time_limit_days": 3,
                                 "checklist": [{"id": "c1", "name_zh": "身份证"}]}]), encoding="utf-8")
    r = cli(data, "import-matters", str(good))
    assert r.returncode == 0, r.stderr
    version = json.loads(r.stdout)["catalog_version"]
    badjson = tmp_path / "bad.json"
    badjson.write_text(json.dumps([{"code": "CLI-2", "name_zh": "好", "category": "A"},
                                   {"code": "CLI-3", "name_zh": "坏", "category": "A", "time_limit_days": -1}]),
                       encoding="utf-8")
    r = cli(data, "import-matters", str(badjson))
    assert r.returncode == 1 and "row 2: time_limit_days" in r.stderr
    csv_path = tmp_path / "m.csv"
    csv_path.write_text(
        "code,name_zh,category,time_limit_days,instant,item_id,item_name_zh,requirement,copies\n"
        "CSV-1,甲,B,0,true,i1,身份证,required,1\n"
        "CSV-1,甲,B,0,true,i2,照片,optional,2\n"
        "CSV-2,乙,B,0,maybe,,,,\n", encoding="utf-8")
    r = cli(data, "import-matters", str(csv_path))
    assert r.returncode == 1 and "line 4" in r.stderr and "instant" in r.stderr

    srv = start_server_process(data)
    try:
        it = signed_in(srv.url, "9001")
        page = it.get(f"/matters?updated_since={version - 1}").json()
        assert page["catalog_version"] == version  # the bad files imported nothing
        assert [m["code"] for m in page["items"]] == ["CLI-1"]
        assert page["items"][0]["checklist"][0]["name_zh"] == "身份证"
        assert it.get("/windows/2").json()["categories"] == ["A", "B"]
        signed_in(srv.url, "3001", password="s3cret-pass")
        r = Api(srv.url).post("/auth/login", json={"staff_no": "1002", "password": "demo1234"})
        assert r.status_code == 403 and r.json()["error"]["code"] == "staff_disabled"
        enroll = Api(srv.url).post("/devices/enroll", json={"enrollment_code": code["code"], "window_no": 3, "hostname": "pc3"})
        assert enroll.status_code == 200, enroll.text
    finally:
        srv.terminate()


def test_serve_prints_address_and_database_without_password(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    r = subprocess.run(
        [sys.executable, "-m", "hall_server", "--port", "1", "--data-dir", str(tmp_path),
         "--db", "postgresql+psycopg://hall:TopSecretPw@127.0.0.1:9/hall"],
        capture_output=True, text=True, timeout=60, env=env, cwd=str(REPO_ROOT))
    out = r.stdout + r.stderr
    assert "http://127.0.0.1:1" in out and "postgresql+psycopg://hall:***@127.0.0.1:9/hall" in out
    assert "TopSecretPw" not in out


@pytest.mark.postgres
def test_serve_with_two_workers_on_postgres(tmp_path: Path) -> None:
    """`hall-server --workers 2` on PostgreSQL: migrated and seeded once, both workers serve."""
    base = os.environ.get("HALL_TEST_PG_URL")
    if not base:
        pytest.skip("HALL_TEST_PG_URL not set")
    url = fresh_pg_url(base)
    srv = start_server_process(tmp_path, db_url=url, extra_args=("--workers", "2"))
    try:
        assert Api(srv.url).get("/health").json()["database"] == "postgresql"
        desk = signed_in(srv.url, "1001", 1)
        issued = [Api(srv.url).post("/tickets", json={"category": "A"}).json()["id"] for _ in range(6)]
        called = [desk.post("/windows/1/call-next").json()["ticket"]["id"]]
        assert called == issued[:1]
        assert len(desk.get("/windows/1/queue").json()["waiting"]) == 5
    finally:
        srv.terminate()
        drop_pg_db(url)
