"""The applicant on a case, against the real server on loopback: who may record, read and reveal
it (hostile callers: another window's staff, IT, no token), masking, the reveal audit, validation,
the raw database bytes (no name, ID number or phone in any file of the data dir), search by case
number / full ID number / phone / day, the purge and rotate commands run as real CLI processes,
and the key file's permissions."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from counter_app import applicant as desk_rules
from hall_server import applicants as server_rules
from tests.support.server_fixtures import (
    REPO_ROOT,
    Api,
    RunningServer,
    signed_in,
    start_server_thread,
)

TODAY = date.today()
ELDER_BIRTH = TODAY.replace(year=TODAY.year - 70, day=1)
_body = f"370102{ELDER_BIRTH:%Y%m%d}123"
ELDER_ID = _body + desk_rules.id_check_char(_body)
NAME, PHONE, ADDRESS = "张三明", "13912345678", "山东省济南市历下区泉城路188号"
YOUNG_ID = "11010519491231002X"


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    s = start_server_thread(data_dir=tmp_path_factory.mktemp("hall"), demo=True)
    yield s
    s.stop()


def new_case(api: Any, window_no: int) -> tuple[int, str]:
    cat = api.get(f"/windows/{window_no}").json()["categories"][0]
    tk = api.post("/tickets", json={"category": cat}).json()
    assert api.post(f"/tickets/{tk['id']}/call", json={"window_no": window_no}).status_code == 200
    r = api.post(f"/tickets/{tk['id']}/start")
    assert r.status_code == 200, r.text
    case = r.json()["case"]
    return int(case["id"]), str(case["case_no"])


def finish(api: Any, window_no: int) -> None:
    """Free the window for the next ticket (the case is left for the test to age by SQL)."""
    cur = api.get(f"/windows/{window_no}").json().get("current_ticket_id")
    if cur:
        r = api.post(f"/tickets/{cur}/complete", json={"outcome": "completed"})
        assert r.status_code == 200, r.text


def audit_rows(srv: RunningServer, case_id: int | None = None) -> list[dict[str, Any]]:
    eng = create_engine(srv.db_url)
    try:
        with eng.connect() as c:
            q = "SELECT case_id, action, staff_no, window_no, purpose FROM applicant_audit"
            rows = c.execute(text(q + (" WHERE case_id = :c" if case_id else "") + " ORDER BY id"),
                             {"c": case_id}).mappings().all()
            return [dict(r) for r in rows]
    finally:
        eng.dispose()


def sql(srv: RunningServer, statement: str, **params: Any) -> Any:
    eng = create_engine(srv.db_url)
    try:
        with eng.begin() as c:
            return c.execute(text(statement), params).all() if statement.startswith("SELECT") else \
                c.execute(text(statement), params)
    finally:
        eng.dispose()


def cli(srv: RunningServer, *args: str) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    env.pop("HALL_DB_URL", None)
    env.pop(server_rules.KEYS_ENV, None)
    p = subprocess.run([sys.executable, "-m", "hall_server", *args, "--data-dir", str(srv.data_dir)],
                       capture_output=True, text=True, timeout=120, env=env, cwd=str(REPO_ROOT))
    assert p.returncode == 0, p.stderr
    out: dict[str, Any] = json.loads(p.stdout)
    return out


PERSON = {"name": NAME, "doc_type": "resident_id", "doc_number": ELDER_ID, "phone": PHONE,
          "address": ADDRESS, "source": "card"}


def test_window_records_reads_masked_and_reveals_with_audit(srv: RunningServer) -> None:
    w1 = signed_in(srv.url, "1001", 1)
    case_id, _no = new_case(w1, 1)
    r = w1.put(f"/cases/{case_id}/applicant", json=PERSON)
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["name"] == "张*明" and got["doc_number"] == ELDER_ID[:4] + "*" * 10 + ELDER_ID[-4:]
    assert got["phone"] == "139****5678" and got["masked"] is True
    assert got["green_channel_suggested"] is True  # 70 years old: the hall rule is 65
    assert NAME not in r.text and ELDER_ID not in r.text and PHONE not in r.text and ADDRESS not in r.text
    g = w1.get(f"/cases/{case_id}/applicant")
    assert g.status_code == 200 and g.json()["name"] == "张*明" and ELDER_ID not in g.text
    assert g.headers["Cache-Control"] == "no-store"

    # Reveal needs a purpose, and writes an audit row with it.
    assert w1.post(f"/cases/{case_id}/applicant/reveal", json={}).status_code == 422
    assert not [a for a in audit_rows(srv, case_id) if a["action"] == "reveal"]
    r = w1.post(f"/cases/{case_id}/applicant/reveal", json={"purpose": "打印一次性告知书"})
    assert r.status_code == 200, r.text
    assert (r.json()["name"], r.json()["doc_number"], r.json()["phone"]) == (NAME, ELDER_ID, PHONE)
    assert r.json()["birth_date"] == ELDER_BIRTH.isoformat()
    reveals = [a for a in audit_rows(srv, case_id) if a["action"] == "reveal"]
    assert reveals == [{"case_id": case_id, "action": "reveal", "staff_no": "1001", "window_no": 1,
                        "purpose": "打印一次性告知书"}]
    # A supervisor calling back after a bad rating may reveal too; it is logged under their name.
    sup = signed_in(srv.url, "8001")
    assert sup.post(f"/cases/{case_id}/applicant/reveal", json={"purpose": "差评回访"}).json()["phone"] == PHONE
    assert audit_rows(srv, case_id)[-1]["staff_no"] == "8001"
    finish(w1, 1)


def test_hostile_callers_are_refused(srv: RunningServer) -> None:
    w1 = signed_in(srv.url, "1001", 1)
    case_id, _no = new_case(w1, 1)
    assert w1.put(f"/cases/{case_id}/applicant", json=PERSON).status_code == 200
    before = len(audit_rows(srv, case_id))
    w2 = signed_in(srv.url, "1002", 2)  # signed-in staff of another window
    it = signed_in(srv.url, "9001")
    anon = Api(srv.url)  # no token at all
    for api, status in ((w2, 403), (it, 403), (anon, 401)):
        assert api.get(f"/cases/{case_id}/applicant").status_code == status
        r = api.post(f"/cases/{case_id}/applicant/reveal", json={"purpose": "curious"})
        assert r.status_code == status and NAME not in r.text
        r = api.put(f"/cases/{case_id}/applicant", json={**PERSON, "name": "李四"})
        assert r.status_code == status
    assert len(audit_rows(srv, case_id)) == before  # nothing revealed, nothing changed
    assert w1.post(f"/cases/{case_id}/applicant/reveal", json={"purpose": "核对"}).json()["name"] == NAME
    # Other windows find none of window 1's cases by the person's number.
    r = w2.get("/applicants/search", params={"id_number": ELDER_ID})
    assert r.status_code == 200 and r.json()["cases"] == []
    assert w2.get("/applicants/search").status_code == 422
    assert w2.get(f"/cases/{10**12}/applicant").status_code == 404
    finish(w1, 1)


def test_bad_input_is_refused_with_a_clear_message_and_stores_nothing(srv: RunningServer) -> None:
    w1 = signed_in(srv.url, "1001", 1)
    case_id, _no = new_case(w1, 1)
    bad_check = ELDER_ID[:17] + ("0" if ELDER_ID[17] != "0" else "1")
    for body, field in (({**PERSON, "doc_number": bad_check}, "doc_number"),
                        ({**PERSON, "phone": "12345"}, "phone"),
                        ({**PERSON, "doc_type": "passport", "doc_number": "ABC"}, "doc_number"),
                        ({**PERSON, "company_name": "某公司", "credit_code": "91350100M000100Y44"}, "credit_code"),
                        ({**PERSON, "name": "张3"}, "name"),
                        ({**PERSON, "company_name": "某\x07公司", "credit_code": "91350100M000100Y43"},
                         "company_name")):
        r = w1.put(f"/cases/{case_id}/applicant", json=body)
        assert r.status_code == 422, r.text
        err = r.json()["error"]
        assert err["code"] == "invalid_applicant" and err["details"]["field"] == field
        assert err["message_zh"] and err["message_en"]
    r = w1.put(f"/cases/{case_id}/applicant", json={**PERSON, "address": "泉城路\ud800"})  # lone surrogate
    assert r.status_code == 422 and r.json()["error"]["message_en"], r.text
    assert w1.get(f"/cases/{case_id}/applicant").json()["error"]["code"] == "no_applicant"
    # A company with the person who came; a younger person is not offered the green channel.
    r = w1.put(f"/cases/{case_id}/applicant", json={
        "name": "王五", "doc_type": "resident_id", "doc_number": YOUNG_ID, "company_name": "济南某某科技有限公司",
        "credit_code": "91350100M000100Y43", "disability_certificate": False})
    assert r.status_code == 200, r.text
    assert r.json()["credit_code"] == "91350100M000100Y43" and r.json()["name"] == "王*"
    born_1949 = date(1949, 12, 31)
    assert r.json()["green_channel_suggested"] is (server_rules.age_on(born_1949, TODAY) >= 65)
    r = w1.put(f"/cases/{case_id}/applicant", json={
        "name": "Anna Smith", "doc_type": "passport", "doc_number": "X1234567", "disability_certificate": True})
    assert r.status_code == 200 and r.json()["green_channel_suggested"] is True
    assert r.json()["name"] == "A********h"
    finish(w1, 1)


def test_raw_database_holds_no_name_id_or_phone(srv: RunningServer) -> None:
    w1 = signed_in(srv.url, "1001", 1)
    case_id, _no = new_case(w1, 1)
    assert w1.put(f"/cases/{case_id}/applicant", json=PERSON, key="idem-applicant-1").status_code == 200
    assert w1.put(f"/cases/{case_id}/applicant", json=PERSON, key="idem-applicant-1").status_code == 200
    w1.post(f"/cases/{case_id}/applicant/reveal", json={"purpose": "核对身份"})
    w1.get("/applicants/search", params={"phone": PHONE})
    finish(w1, 1)
    sql(srv, "SELECT 1")  # a checkpoint is not needed: the WAL file is read too
    needles = [NAME.encode(), ELDER_ID.encode(), PHONE.encode(), ADDRESS.encode(),
               NAME.encode("utf-16-le"), ELDER_ID.encode("utf-16-le")]
    files = [p for p in srv.data_dir.rglob("*") if p.is_file() and p.name != server_rules.KEY_FILE]
    assert any(p.name == "hall.sqlite3" for p in files)
    # Read in a child process: closing a descriptor of the database file in this process would
    # drop the POSIX locks the server (running in this process) holds on it.
    script = ("import sys, json\n"
              "needles = [bytes.fromhex(h) for h in json.loads(sys.argv[1])]\n"
              "for path in sys.argv[2:]:\n"
              "    raw = open(path, 'rb').read()\n"
              "    print(json.dumps([path, len(raw), [n.hex() for n in needles if n in raw]]))\n")
    out = subprocess.run([sys.executable, "-c", script, json.dumps([n.hex() for n in needles]),
                          *map(str, files)], capture_output=True, text=True, timeout=60, check=True).stdout
    seen = [json.loads(line) for line in out.splitlines()]
    assert len(seen) == len(files) and sum(size for _p, size, _f in seen) > 0
    for path, _size, found in seen:
        assert not found, f"{[bytes.fromhex(h) for h in found]} in {path}"
    # The ciphertext is there, under a key id, with keyed hashes for lookups.
    row = sql(srv, "SELECT key_id, data_enc, id_hash FROM case_applicants WHERE case_id = :c", c=case_id)[0]
    assert row[0].startswith("k") and len(row[1]) > 40 and len(row[2]) == 64


def test_search_by_case_number_id_phone_and_day(srv: RunningServer) -> None:
    w1 = signed_in(srv.url, "1001", 1)
    case_id, case_no = new_case(w1, 1)
    assert w1.put(f"/cases/{case_id}/applicant", json=PERSON).status_code == 200
    finish(w1, 1)
    day = sql(srv, "SELECT day FROM cases WHERE id = :c", c=case_id)[0][0]
    for params in ({"case_no": case_no}, {"id_number": ELDER_ID.lower()}, {"phone": "+86 139 1234 5678"},
                   {"day": day}):
        r = w1.get("/applicants/search", params=params)
        assert r.status_code == 200, r.text
        found = [c for c in r.json()["cases"] if c["case_no"] == case_no]
        assert found and found[0]["applicant"]["name"] == "张*明", params
        assert ELDER_ID not in r.text and PHONE not in r.text
    r = w1.get("/applicants/search", params={"id_number": YOUNG_ID[:17] + "9"})
    assert all(c["case_no"] != case_no for c in r.json()["cases"])
    searches = [a for a in audit_rows(srv) if a["action"] == "search" and a["staff_no"] == "1001"]
    assert searches and ELDER_ID not in json.dumps(searches, ensure_ascii=False)
    sup = signed_in(srv.url, "8001")
    assert [c for c in sup.get("/applicants/search", params={"id_number": ELDER_ID}).json()["cases"]
            if c["case_no"] == case_no]


def test_purge_command_deletes_records_past_retention(srv: RunningServer) -> None:
    w1 = signed_in(srv.url, "1001", 1)
    old_case, _ = new_case(w1, 1)
    assert w1.put(f"/cases/{old_case}/applicant", json=PERSON).status_code == 200
    finish(w1, 1)
    new_case_id, _ = new_case(w1, 1)
    assert w1.put(f"/cases/{new_case_id}/applicant", json=PERSON).status_code == 200
    finish(w1, 1)
    long_ago = 1_000_000_000_000  # 2001
    sql(srv, "UPDATE cases SET started_ms = :t, completed_ms = :t WHERE id = :c", t=long_ago, c=old_case)
    out = cli(srv, "purge-applicants", "--days", "30")
    assert out["purged"] >= 1 and out["retention_days"] == 30
    assert w1.get(f"/cases/{old_case}/applicant").json()["error"]["code"] == "no_applicant"
    assert w1.get(f"/cases/{new_case_id}/applicant").status_code == 200  # recent: kept
    assert audit_rows(srv, old_case)[-1]["action"] == "purge"
    assert sql(srv, "SELECT count(*) FROM cases WHERE id = :c", c=old_case)[0][0] == 1  # the case stays


def test_rotate_command_re_encrypts_and_the_running_server_follows(srv: RunningServer) -> None:
    w1 = signed_in(srv.url, "1001", 1)
    case_id, _ = new_case(w1, 1)
    assert w1.put(f"/cases/{case_id}/applicant", json=PERSON).status_code == 200
    finish(w1, 1)
    key_file = srv.data_dir / server_rules.KEY_FILE
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    old = json.loads(key_file.read_text())
    out = cli(srv, "rotate-applicant-key")
    new = json.loads(key_file.read_text())
    assert out["key_id"] == new["current"] != old["current"] and out["re_encrypted"] >= 1
    assert set(new["keys"]) == {new["current"]} and new["index_key"] == old["index_key"]
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    kids = {r[0] for r in sql(srv, "SELECT DISTINCT key_id FROM case_applicants")}
    assert kids == {new["current"]}
    # The running server picks the new key up: reads, lookups and new writes keep working.
    r = w1.post(f"/cases/{case_id}/applicant/reveal", json={"purpose": "轮换后核对"})
    assert r.status_code == 200 and r.json()["name"] == NAME
    assert w1.get("/applicants/search", params={"id_number": ELDER_ID}).json()["cases"]
    case2, _ = new_case(w1, 1)
    assert w1.put(f"/cases/{case2}/applicant", json=PERSON).status_code == 200
    finish(w1, 1)
    assert sql(srv, "SELECT key_id FROM case_applicants WHERE case_id = :c", c=case2)[0][0] == new["current"]


def test_key_file_too_open_or_missing_stops_the_start(tmp_path: Path) -> None:
    keys = server_rules.ApplicantKeys(tmp_path)
    path = tmp_path / server_rules.KEY_FILE
    assert oct(path.stat().st_mode & 0o777) == "0o600" and keys.current in keys.keys
    assert server_rules.ApplicantKeys(tmp_path).current == keys.current  # the same key next start
    path.chmod(0o644)
    with pytest.raises(server_rules.KeyFileError, match="chmod 600"):
        server_rules.ApplicantKeys(tmp_path)
    env_doc = json.dumps({"current": "e1", "keys": {"e1": "A" * 43 + "="}, "index_key": "B" * 43 + "="})
    assert server_rules.ApplicantKeys(tmp_path / "other", env=env_doc).current == "e1"
    assert not (tmp_path / "other" / server_rules.KEY_FILE).exists()  # the env var: no file written
    with pytest.raises(server_rules.KeyFileError):
        server_rules.ApplicantKeys(tmp_path / "other", env='{"current": "x"}')
    # A ciphertext moved onto another case does not decrypt (associated data binds it).
    env_keys = server_rules.ApplicantKeys(tmp_path / "other", env=env_doc)
    kid, data = server_rules.encrypt(env_keys, 1, {"name": NAME})
    assert server_rules.decrypt(env_keys, 1, kid, data) == {"name": NAME}
    with pytest.raises(server_rules.ApiError):
        server_rules.decrypt(env_keys, 2, kid, data)


@pytest.mark.parametrize("number", ["11010519491231002X", "110105194912310021", "USA110700081002",
                                    "911586198001010011", "H12345678", "12345678", "E1234", "EA1234567"])
def test_server_and_desk_rules_agree(number: str) -> None:
    for doc_type in desk_rules.DOC_TYPES:
        try:
            desk_ok = desk_rules.check_document(doc_type, number, TODAY)
        except desk_rules.InvalidEntryError:
            desk_ok = None
        try:
            server_ok: str | None = server_rules.check_document(doc_type, number, TODAY)[0]
        except server_rules.ApiError:
            server_ok = None
        assert desk_ok == server_ok, (doc_type, number)
    for phone in ("13912345678", "+8613912345678", "12912345678"):
        try:
            d: str | None = desk_rules.check_phone(phone)
        except desk_rules.InvalidEntryError:
            d = None
        try:
            s: str | None = server_rules.check_phone(phone)
        except server_rules.ApiError:
            s = None
        assert d == s
    assert desk_rules.mask_number(number) == server_rules.mask_number(number)


@pytest.mark.postgres
def test_on_postgres(pg_hall_server: RunningServer) -> None:
    srv = pg_hall_server
    w1 = signed_in(srv.url, "1001", 1)
    case_id, case_no = new_case(w1, 1)
    r = w1.put(f"/cases/{case_id}/applicant", json=PERSON, key="pg-applicant-1")
    assert r.status_code == 200 and r.json()["name"] == "张*明", r.text
    assert w1.get("/applicants/search", params={"id_number": ELDER_ID}).json()["cases"][0]["case_no"] == case_no
    r = w1.post(f"/cases/{case_id}/applicant/reveal", json={"purpose": "核对"})
    assert r.json()["doc_number"] == ELDER_ID
    assert [a["action"] for a in audit_rows(srv, case_id)] == ["put", "reveal"]
    rows = sql(srv, "SELECT data_enc, id_hash, phone_hash FROM case_applicants")
    assert rows and all(ELDER_ID not in " ".join(map(str, row)) for row in rows)
    body = sql(srv, "SELECT body FROM idempotency_keys WHERE key = 'pg-applicant-1'")[0][0]
    assert NAME not in body and ELDER_ID not in body and "张*明" in body  # only the masked reply is kept
    from hall_server.db import Store

    store = Store(srv.db_url)
    try:
        assert server_rules.purge(store, 1)["purged"] == 0  # today's case is kept
    finally:
        store.close()
    finish(w1, 1)
