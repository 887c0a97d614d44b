"""The applicant at the real desk window (issue 17 item 5), against the demo hall server in its
own process and a GA 467 card reader emulated on a pty:

a clerk calls and starts a ticket, presses F11; the card is read off the Tk thread, recorded on
the case and shown masked (张*明 · 3701**********1234); the 65-year-old's ticket is offered the
green channel; the reveal asks for a purpose and the server audits it; the one-time notice PDF
carries the applicant's name (pdftotext); and afterwards the desk's data and log folders hold the
name, ID number and address nowhere (the printout is kept only in the encrypted store).
Screenshots zh/en at 1366×768 under $COUNTER_ARTIFACTS/screenshots.
"""

from __future__ import annotations

import os
import subprocess
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from counter_app.applicant import id_check_char
from counter_app.documents import notice
from tests.support.deploy_fixtures import MemoryKeyring
from tests.support.gui_fixtures import pump, pump_until, screenshot
from tests.support.server_fixtures import Api
from tests.test_capture_ui import _matter, hall_proc  # noqa: F401 - the fixture
from tests.test_idcard_reader import Module, text_of
from tests.test_ui_desk import press, shot_both
from ui import i18n
from ui.views.applicant import (
    MailingDialog,
    ManualEntryDialog,
    PapersDialog,
    RevealDialog,
    YesNoDialog,
)

pytestmark = pytest.mark.gui

NAME = "张三明"
ADDRESS = "山东省济南市历下区泉城路188号"


def sixty_five_today() -> tuple[date, str]:
    """A birth date 65 years and a day ago, and a valid ID number for it."""
    today = date.today()
    born = today.replace(year=today.year - 65) - timedelta(days=1)
    body = f"370102{born:%Y%m%d}223"
    return born, body + id_check_char(body)


def files_holding(folder: Path, needles: list[str]) -> list[str]:
    """Every file under `folder` whose bytes hold one of `needles` (UTF-8 or UTF-16-LE)."""
    hits = []
    for p in folder.rglob("*"):
        if not p.is_file():
            continue
        data = p.read_bytes()
        for n in needles:
            if n.encode() in data or n.encode("utf-16-le") in data:
                hits.append(f"{p.relative_to(folder)}: {n}")
    return hits


def pdf_text(tmp_path: Path, data: bytes) -> str:
    pdf = tmp_path / "printed.pdf"
    pdf.write_bytes(data)
    return subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True,
                          check=True).stdout


def notice_text(app: Any) -> str:
    return str(app.desk_view.notice_label.cget("text"))


def shot_dialog_both(dialog: Any, name: str) -> None:
    for lang in ("zh", "en"):
        i18n.set_language(lang)
        pump(dialog, 0.1)
        screenshot(dialog, f"{name}_{lang}")
    i18n.set_language("zh")


def test_clerk_reads_the_card_with_f11(desk_app_factory: Any, hall_proc: Any,  # noqa: F811
                                       tmp_path: Path, memory_keyring: MemoryKeyring) -> None:
    born, number = sixty_five_today()
    master, slave = os.openpty()
    module = Module(master)
    module.text = text_of(name=NAME, birth=f"{born:%Y%m%d}", id_number=number, address=ADDRESS)
    matter = _matter(hall_proc.url)
    printed: list[bytes] = []
    notice.set_printer(lambda path: printed.append(path.read_bytes()))
    try:
        app = desk_app_factory(hall_proc.url, 1, idcard_port=os.ttyname(slave),
                               scanner_source="none")
        app.root.geometry("1366x768+0+0")
        pump_until(app.root, lambda: app.signin is not None and app.signin.server_ok,
                   what="server check")
        app.sign_in("1001", "demo1234")
        pump_until(app.root, lambda: app.desk_view is not None, what="the desk")
        r = Api(hall_proc.url).post("/tickets", json={"category": "A", "matter_code": matter.code})
        assert r.status_code == 201, r.text
        pump_until(app.root, lambda: app.core.catalog.get(matter.code) is not None, what="catalog")
        for key, state in (("F1", "calling"), ("F7", "serving")):
            press(app, key)
            pump_until(app.root, lambda s=state: app.desk.s.state == s and app.desk.s.busy is None,
                       what=state)
        view = app.desk_view
        assert "F11" in view.buttons["applicant"].cget("text")  # the key is on its button

        # F11: the card is read on a worker (the Tk loop keeps turning), recorded, shown masked.
        press(app, "F11")
        offer = pump_until(app.root, lambda: view.dialog if isinstance(view.dialog, YesNoDialog)
                           and view.dialog.winfo_exists() else None, what="the green offer")
        line = str(view.applicant_bar.line.cget("text"))
        assert "张*明" in line and number[:4] + "*" * 10 + number[-4:] in line, line
        assert NAME not in line and number not in line
        assert "65" in str(offer.text_label.cget("text"))  # the age is the reason given
        screenshot(offer, "applicant_green_offer_zh")
        i18n.set_language("en")
        pump(app.root, 0.1)
        screenshot(offer, "applicant_green_offer_en")
        i18n.set_language("zh")
        offer.cancel()  # not this time: the case goes on here
        pump_until(app.root, lambda: not offer.winfo_exists(), what="offer closed")
        shot_both(app, "applicant_masked")

        # Reveal: no purpose, no details; with one, the full record and an audit row.
        view.applicant_bar.reveal_button.invoke()
        reveal = pump_until(app.root, lambda: view.dialog if isinstance(view.dialog, RevealDialog)
                            and view.dialog.winfo_exists() else None, what="the reveal dialog")
        reveal.confirm()
        pump(app.root, 0.2)
        assert reveal.error_label.cget("text") and not reveal.shown
        reveal.entry.insert(0, "核对邮寄地址")
        reveal.confirm()
        pump_until(app.root, lambda: reveal.shown, what="the full details")
        shown = " ".join(str(w.cget("text")) for w in reveal.details.winfo_children())
        assert NAME in shown and number in shown
        screenshot(reveal, f"applicant_reveal_{i18n.language()}")
        reveal.confirm()  # Enter closes: the full values go with the dialog
        pump_until(app.root, lambda: not reveal.winfo_exists(), what="reveal closed")
        engine = sa.create_engine(f"sqlite:///{hall_proc.data_dir / 'hall.sqlite3'}")
        with engine.connect() as c:
            audit = c.execute(sa.text("SELECT action, purpose, staff_no FROM applicant_audit "
                                      "ORDER BY id")).all()
        engine.dispose()
        assert ("reveal", "核对邮寄地址", "1001") in [tuple(a) for a in audit]

        # The one-time notice names the applicant.
        view.capture_button.invoke()
        win = pump_until(app.root, lambda: getattr(app, "capture_window", None), what="capture")
        win.notice_button.invoke()
        pump_until(app.root, lambda: win.yes_no is not None, what="the suspend question")
        assert len(printed) == 1
        text = pdf_text(tmp_path, printed[0])
        assert NAME in text and "一次性告知书" in text
        win.no_button.invoke()
        win.close()

        # F12: the acceptance receipt names the applicant; the result mailing is recorded.
        case = app.desk.s.case
        press(app, "F12")
        papers = pump_until(app.root, lambda: view.dialog if isinstance(view.dialog, PapersDialog)
                            and view.dialog.winfo_exists() else None, what="the papers dialog")
        papers.receipt_button.invoke()
        pump_until(app.root, lambda: len(printed) == 2, what="the receipt printed")
        text = pdf_text(tmp_path, printed[1])
        assert "受理回执" in text and NAME in text and case.case_no in text
        papers.mailing_button.invoke()
        mail = pump_until(app.root, lambda: view.dialog if isinstance(view.dialog, MailingDialog)
                          and view.dialog.winfo_exists() else None, what="the mailing dialog")
        assert mail.entries["recipient"].get() == NAME  # the applicant read here
        assert mail.entries["address"].get() == ADDRESS
        mail.entries["phone"].insert(0, "13912345678")
        mail.entries["tracking_no"].insert(0, "EA123456789CN")
        screenshot(mail, f"applicant_mailing_{i18n.language()}")
        mail.confirm()
        pump_until(app.root, lambda: not mail.winfo_exists(), what="mailing recorded")
        assert "9CN" in notice_text(app) and "EA123456789CN" not in notice_text(app)  # masked
        got = app.core.client.mailing(case.id)
        assert (got.recipient, got.status) == ("张*明", "mailed")

        # Find the case by the full ID number (keyed-hash match) and reprint its receipt.
        press(app, "F12")
        papers = pump_until(app.root, lambda: view.dialog if isinstance(view.dialog, PapersDialog)
                            and view.dialog.winfo_exists() else None, what="the papers dialog")
        papers.by.set(papers.by.cget("values")[1])  # ID number
        papers.by_key()
        papers.entry.insert(0, number)
        papers.confirm()
        pump_until(app.root, lambda: papers.results.size() == 1, what="the case found")
        assert case.case_no in papers.results.get(0) and number not in papers.results.get(0)
        shot_dialog_both(papers, "applicant_find_reprint")
        papers.reprint_receipt.invoke()
        pump_until(app.root, lambda: len(printed) == 3, what="the receipt reprinted")
        assert printed[2] == printed[1]  # the kept copy, decrypted
        papers.close()

        # Nothing about the applicant on the desk's disk outside the encrypted store.
        data_dir, log_dir = app.settings.data_dir, app.settings.log_dir
        needles = [NAME, number, number[6:14], ADDRESS, "13912345678", "EA123456789CN"]
        assert files_holding(data_dir, needles) == []
        assert files_holding(log_dir, needles) == []
        kept = app.core.documents.printouts.find(case_no=app.desk.s.case.case_no)
        assert sorted(d.kind for d in kept) == ["notice", "receipt"]
        assert list((data_dir / "spool").iterdir()) == []
    finally:
        notice.set_printer(None)
        module.close()
        os.close(slave)
        os.close(master)


def test_manual_entry_and_the_green_channel_taken(desk_app_factory: Any, hall_proc: Any,  # noqa: F811
                                                  memory_keyring: MemoryKeyring) -> None:
    """No reader configured: F11 opens manual entry; a wrong check digit is refused in the dialog
    (zh + en text, nothing recorded); a disability certificate makes the green-channel offer,
    and Yes moves the ticket to the green channel on the server."""
    matter = _matter(hall_proc.url)
    app = desk_app_factory(hall_proc.url, 1, scanner_source="none")
    pump_until(app.root, lambda: app.signin is not None and app.signin.server_ok, what="server")
    app.sign_in("1001", "demo1234")
    pump_until(app.root, lambda: app.desk_view is not None, what="the desk")
    r = Api(hall_proc.url).post("/tickets", json={"category": "A", "matter_code": matter.code})
    assert r.status_code == 201, r.text
    for key, state in (("F1", "calling"), ("F7", "serving")):
        press(app, key)
        pump_until(app.root, lambda s=state: app.desk.s.state == s and app.desk.s.busy is None,
                   what=state)
    view, case = app.desk_view, app.desk.s.case
    press(app, "F11")
    entry = pump_until(app.root, lambda: view.dialog if isinstance(view.dialog, ManualEntryDialog)
                       and view.dialog.winfo_exists() else None, what="manual entry")
    body = "11010519800101123"
    number = body + id_check_char(body)
    wrong = body + ("0" if number[-1] != "0" else "1")
    entry.entries["name"].insert(0, "王小红")
    entry.entries["doc_number"].insert(0, wrong)
    entry.disability.select()
    entry.confirm()
    pump(app.root, 0.2)
    assert entry.winfo_exists() and "校验" in str(entry.error_label.cget("text"))
    screenshot(entry, "applicant_manual_error_zh")
    entry.entries["doc_number"].delete(0, "end")
    entry.entries["doc_number"].insert(0, number)
    entry.confirm()
    offer = pump_until(app.root, lambda: view.dialog if isinstance(view.dialog, YesNoDialog)
                       and view.dialog.winfo_exists() else None, what="the green offer")
    assert "残疾" in str(offer.text_label.cget("text"))
    assert "王*红" in str(view.applicant_bar.line.cget("text"))
    offer.confirm()  # Yes
    pump_until(app.root, lambda: app.desk.s.state == "idle" and app.desk.s.busy is None,
               what="ticket moved")
    ticket = app.core.client.ticket(case.ticket_id)
    assert ticket.priority == "green" and ticket.state == "waiting", ticket
