"""Result mailing (邮寄) on a case, against the real server on loopback (issue 17 item 2): the
window records recipient, phone, address, carrier and tracking number through the API (and the
desk's ApplicantDesk); the reply is masked; another window's staff, IT and anonymous callers are
refused; bad values get a clear error and store nothing; the raw database holds none of the
values; the purge command deletes the mailings with the applicant records and the key rotation
re-encrypts them (a mailing left under a retired key would be lost)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from api_client import HallClient
from counter_app.applicant_desk import ApplicantDesk
from counter_app.errors import CounterError
from hall_server import applicants as server_rules
from tests.support.server_fixtures import Api, RunningServer, signed_in
from tests.test_applicant_server import audit_rows, cli, finish, new_case, sql, srv  # noqa: F401

RECIPIENT, PHONE, ADDRESS = "李秀英", "13712345678", "山东省济南市市中区经十路99号3单元"
TRACKING = "EA123456789CN"
MAILING = {"recipient": RECIPIENT, "phone": PHONE, "address": ADDRESS, "carrier": "ems"}


def test_window_records_the_mailing_masked_and_audited(srv: RunningServer) -> None:  # noqa: F811
    w1 = signed_in(srv.url, "1001", 1)
    case_id, _no = new_case(w1, 1)
    r = w1.put(f"/cases/{case_id}/mailing", json=MAILING)
    assert r.status_code == 200, r.text
    got = r.json()
    assert (got["recipient"], got["phone"], got["status"]) == ("李*英", "137****5678", "to_mail")
    assert got["address"].endswith("****") and ADDRESS not in r.text and PHONE not in r.text
    # Mailed: the tracking number, masked too; the first mailing time is kept on later edits.
    r = w1.put(f"/cases/{case_id}/mailing", json={**MAILING, "tracking_no": "ea 1234-56789cn"})
    assert r.status_code == 200 and r.json()["status"] == "mailed", r.text
    assert TRACKING not in r.text and r.json()["tracking_no"].startswith("E")
    first = r.json()["mailed_at"]
    r = w1.put(f"/cases/{case_id}/mailing", json={**MAILING, "tracking_no": TRACKING, "carrier": "sf"})
    assert r.json()["mailed_at"] == first and r.json()["carrier"] == "sf"
    g = w1.get(f"/cases/{case_id}/mailing")
    assert g.status_code == 200 and g.headers["Cache-Control"] == "no-store"
    assert g.json()["recipient"] == "李*英" and RECIPIENT not in g.text
    assert [a["purpose"] for a in audit_rows(srv, case_id) if a["action"] == "mailing"] == \
        ["to_mail", "mailed", "mailed"]
    finish(w1, 1)


def test_hostile_callers_and_bad_values(srv: RunningServer) -> None:  # noqa: F811
    w1 = signed_in(srv.url, "1001", 1)
    case_id, _no = new_case(w1, 1)
    assert w1.put(f"/cases/{case_id}/mailing", json=MAILING).status_code == 200
    w2, it, anon = signed_in(srv.url, "1002", 2), signed_in(srv.url, "9001"), Api(srv.url)
    for api, status in ((w2, 403), (it, 403), (anon, 401)):
        assert api.get(f"/cases/{case_id}/mailing").status_code == status
        # Redirecting another window's result to an address of one's choosing is refused.
        r = api.put(f"/cases/{case_id}/mailing", json={**MAILING, "address": "北京市朝阳区某某路1号"})
        assert r.status_code == status
    assert w1.get(f"/cases/{case_id}/mailing").json()["address"] == ADDRESS[:6] + "****"
    for body, field in (({**MAILING, "phone": "12345"}, "phone"),
                        ({**MAILING, "recipient": "李4"}, "recipient"),
                        ({**MAILING, "tracking_no": "EA12'; --"}, "tracking_no"),
                        ({**MAILING, "address": "山东省济南市\u0000经十路"}, "address")):
        r = w1.put(f"/cases/{case_id}/mailing", json=body)
        assert r.status_code == 422, r.text
        err = r.json()["error"]
        assert err["details"]["field"] == field and err["message_zh"] and err["message_en"]
    assert w1.get(f"/cases/{case_id}/mailing").json()["phone"] == "137****5678"  # unchanged
    assert w1.get(f"/cases/{10**12}/mailing").status_code == 404
    finish(w1, 1)


def test_desk_records_mailing_through_the_api_client(srv: RunningServer) -> None:  # noqa: F811
    w1 = signed_in(srv.url, "1001", 1)
    case_id, _no = new_case(w1, 1)
    client = HallClient(srv.url)
    client.login("1001", "demo1234", window_no=1)
    desk = ApplicantDesk(client, None)
    try:
        m = desk.record_mailing(case_id, recipient=RECIPIENT, phone="+86 137 1234 5678",
                                address=ADDRESS, carrier="ems", tracking_no=TRACKING)
        assert (m.recipient, m.status) == ("李*英", "mailed") and desk.mailing(case_id).carrier == "ems"
        with pytest.raises(CounterError) as e:  # checked on the desk before the server
            desk.record_mailing(case_id, recipient=RECIPIENT, phone="555", address=ADDRESS)
        assert e.value.code == "invalid_phone" and e.value.message_zh and e.value.message_en
    finally:
        client.close()
    finish(signed_in(srv.url, "1001", 1), 1)  # the desk's sign-in took the window over


def test_raw_database_and_retention_and_rotation(srv: RunningServer) -> None:  # noqa: F811
    w1 = signed_in(srv.url, "1001", 1)
    old_case, _ = new_case(w1, 1)
    assert w1.put(f"/cases/{old_case}/mailing", json={**MAILING, "tracking_no": TRACKING}).status_code == 200
    finish(w1, 1)
    case_id, _ = new_case(w1, 1)
    assert w1.put(f"/cases/{case_id}/mailing", json={**MAILING, "tracking_no": TRACKING}).status_code == 200
    finish(w1, 1)
    needles = [s.encode() for s in (RECIPIENT, PHONE, ADDRESS, TRACKING)]
    files = [p for p in srv.data_dir.rglob("*") if p.is_file() and p.name != server_rules.KEY_FILE]
    script = ("import sys, json\n"
              "needles = [bytes.fromhex(h) for h in json.loads(sys.argv[1])]\n"
              "for path in sys.argv[2:]:\n"
              "    raw = open(path, 'rb').read()\n"
              "    print(json.dumps([path, [n.hex() for n in needles if n in raw]]))\n")
    out = subprocess.run([sys.executable, "-c", script, json.dumps([n.hex() for n in needles]),
                          *map(str, files)], capture_output=True, text=True, timeout=60,
                         check=True).stdout
    for line in out.splitlines():
        path, found = json.loads(line)
        assert not found, f"{[bytes.fromhex(h) for h in found]} in {path}"

    key_file = srv.data_dir / server_rules.KEY_FILE
    out_rot = cli(srv, "rotate-applicant-key")
    new = json.loads(key_file.read_text())
    assert {r[0] for r in sql(srv, "SELECT DISTINCT key_id FROM case_mailings")} == {new["current"]}
    assert set(new["keys"]) == {new["current"]} and out_rot["re_encrypted"] >= 2
    assert w1.get(f"/cases/{case_id}/mailing").json()["recipient"] == "李*英"  # still readable

    long_ago = 1_000_000_000_000
    sql(srv, "UPDATE cases SET started_ms = :t, completed_ms = :t WHERE id = :c", t=long_ago, c=old_case)
    cli(srv, "purge-applicants", "--days", "30")
    assert w1.get(f"/cases/{old_case}/mailing").json()["error"]["code"] == "no_mailing"
    assert w1.get(f"/cases/{case_id}/mailing").status_code == 200  # recent: kept
