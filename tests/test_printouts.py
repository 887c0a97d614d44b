"""Printouts naming the applicant (issue 17 item 4): the notice or receipt is kept only encrypted
(the store's files hold neither the name nor any PDF text), printed through a 0600 spool file
that is gone once the print path returns, reprinted byte for byte from the kept copy, purged
after the keep period; with no safe keyring it is printed and not kept. The 受理回执 PDF carries
the applicant, the case number, the time limit, the materials in hand and the mailing."""

from __future__ import annotations

import stat
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

from counter_app.documents import notice, receipt
from counter_app.documents.printouts import Printouts
from counter_app.documents.store import StoreRefusedError

NAME = "张三明"


class FixedKey:
    def get(self) -> bytes:
        return b"k" * 32


class NoKeyring:
    def get(self) -> bytes:
        raise StoreRefusedError(message_zh="无安全钥匙串", message_en="No safe keyring",
                                code="keyring_unsafe")


def receipt_pdf() -> bytes:
    matter = SimpleNamespace(checklist=[
        SimpleNamespace(id="a", name_zh="营业执照申请书", copies=1),
        SimpleNamespace(id="b", name_zh="经营场所证明", copies=2),
        SimpleNamespace(id="c", name_zh="身份证复印件", copies=1)])
    case = SimpleNamespace(materials=[SimpleNamespace(item_id="a", status="received"),
                                      SimpleNamespace(item_id="b", status="accepted_pending"),
                                      SimpleNamespace(item_id="c", status="missing")])
    return receipt.render(receipt.ReceiptData(
        hall="高新区政务服务中心", window="1号窗口", matter="个体工商户设立登记",
        case_no="GXQ-20261203-0007", clerk="王丽娜（1001）",
        items=receipt.received_items(matter, case), applicant=NAME, time_limit_days=3,
        mailing="EMS邮寄至 张*明（山东省济南****），待寄出"))


def text_of(tmp_path: Path, data: bytes) -> str:
    p = tmp_path / "x.pdf"
    p.write_bytes(data)
    return subprocess.run(["pdftotext", "-layout", str(p), "-"], capture_output=True, text=True,
                          check=True).stdout


def test_the_receipt_says_who_what_when_and_what_was_received(tmp_path: Path) -> None:
    text = text_of(tmp_path, receipt_pdf())
    for part in ("受理回执", NAME, "GXQ-20261203-0007", "3 个工作日", "营业执照申请书",
                 "经营场所证明（2 份，容缺受理（后补））", "EMS邮寄至"):
        assert part in text, part
    assert "身份证复印件" not in text  # missing: not on the receipt


def test_kept_only_encrypted_spool_gone_reprint_and_purge(tmp_path: Path) -> None:
    seen: list[tuple[Path, bytes, int]] = []

    def printer(path: Path) -> None:
        seen.append((path, path.read_bytes(), stat.S_IMODE(path.stat().st_mode)))

    notice.set_printer(printer)
    try:
        p = Printouts(tmp_path, FixedKey())
        pdf = receipt_pdf()
        kept = p.print_new(pdf, kind="receipt", case_id=7, case_no="GXQ-20261203-0007")
        assert kept is not None and seen[0][1] == pdf and seen[0][2] == 0o600
        assert not seen[0][0].exists() and list((tmp_path / "spool").iterdir()) == []
        for f in tmp_path.rglob("*"):
            if f.is_file():
                raw = f.read_bytes()
                assert NAME.encode() not in raw and b"%PDF" not in raw, f
                assert NAME.encode("utf-16-be") not in raw, f
        assert [d.id for d in p.find(case_no="GXQ-20261203-0007", kind="receipt")] == [kept.id]
        p.reprint(kept.id)
        assert seen[1][1] == pdf  # the same bytes, decrypted
        assert p.purge(now=kept.created + 3600) == 0
        assert p.purge(now=kept.created + 8 * 86400) == 1 and p.find() == []
    finally:
        notice.set_printer(None)


def test_leftover_spool_files_are_swept_and_no_keyring_means_not_kept(tmp_path: Path) -> None:
    (tmp_path / "spool").mkdir()
    (tmp_path / "spool" / "old.pdf").write_bytes(b"%PDF-1.4 left by a crash")
    printed: list[bytes] = []
    notice.set_printer(lambda path: printed.append(path.read_bytes()))
    try:
        p = Printouts(tmp_path, NoKeyring())
        assert list((tmp_path / "spool").iterdir()) == []
        assert p.print_new(b"%PDF-1.4 x", kind="notice", case_id=1, case_no="N-1") is None
        assert printed == [b"%PDF-1.4 x"] and p.find() == []
    finally:
        notice.set_printer(None)


def test_a_failed_print_leaves_no_spool_file(tmp_path: Path) -> None:
    def broken(_path: Path) -> None:
        raise notice.DocumentError(message_zh="无法打印", message_en="Cannot print", code="no_printer")

    notice.set_printer(broken)
    try:
        p = Printouts(tmp_path, FixedKey())
        with pytest.raises(notice.DocumentError):
            p.print_new(b"%PDF-1.4 y", kind="notice", case_id=2, case_no="N-2")
        assert list((tmp_path / "spool").iterdir()) == []
        assert len(p.find(case_no="N-2")) == 1  # kept: the clerk reprints once the printer is back
    finally:
        notice.set_printer(None)
