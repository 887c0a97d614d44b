"""Printouts that name the applicant (the one-time notice, the acceptance receipt): kept for
reprinting only inside the encrypted store, printed through a spool file that exists only while
the print command runs (issue 17 item 4: nothing about the applicant stays on disk in clear).

* Kept copies: a `DocumentStore` under ``<data dir>/printouts`` (AES-GCM, per-object key wrapped
  by the master key in the OS keyring; the meta file holds the kind, case id and case number,
  never a name). Purged after `KEEP_DAYS`; older ones are made again from the server's data.
* Printing: the PDF is written to ``<data dir>/spool/<random>.pdf`` (0600), handed to the print
  path (`notice.print_pdf`: `lp` copies it into the CUPS spool before it returns), then deleted.
  Windows prints a file asynchronously (ShellExecute "print"), so there the file is deleted a
  minute later; whatever an earlier run left in the spool folder is deleted when this opens.
* Without a safe keyring nothing is kept: the printout is printed and gone (reprints are made
  again from the server).

All methods block on disk: worker threads only.
"""

from __future__ import annotations

import logging
import os
import secrets
import sys
import threading
import time
from pathlib import Path

from counter_app.documents import notice
from counter_app.documents.store import (
    DocumentStore,
    KeyringMasterKey,
    MasterKeyProvider,
    StoredDoc,
    StoreRefusedError,
)

log = logging.getLogger(__name__)

KEEP_DAYS = 7
WINDOWS_PRINT_GRACE_S = 60.0


class Printouts:
    def __init__(self, data_dir: Path, keys: MasterKeyProvider | None = None,
                 keep_days: float = KEEP_DAYS) -> None:
        self.spool = data_dir / "spool"
        self.spool.mkdir(parents=True, exist_ok=True)
        self.keep_s = keep_days * 86400.0
        self.store: DocumentStore | None = DocumentStore(data_dir / "printouts",
                                                         keys or KeyringMasterKey())
        self.sweep_spool()

    def sweep_spool(self) -> int:
        """Delete every spool file (a crash or a Windows print may have left one)."""
        n = 0
        for p in self.spool.iterdir():
            try:
                p.unlink()
                n += 1
            except OSError as exc:
                log.warning("spool file %s not deleted yet: %s", p.name, exc.strerror)
        return n

    def print_new(self, pdf: bytes, *, kind: str, case_id: int, case_no: str) -> StoredDoc | None:
        """Keep `pdf` encrypted for reprints (when the keyring allows), then print it."""
        kept: StoredDoc | None = None
        if self.store is not None:
            try:
                kept = self.store.put(pdf, kind=kind, case_id=case_id, item_id=case_no,
                                      content_type="application/pdf",
                                      filename=f"{kind}-{case_no}.pdf")
            except StoreRefusedError as exc:
                log.warning("printout not kept for reprinting (%s): printed only", exc.code)
        self._print(pdf)
        self.purge()
        return kept

    def find(self, *, case_no: str | None = None, case_id: int | None = None,
             kind: str | None = None) -> list[StoredDoc]:
        """Kept printouts of a case, newest first."""
        if self.store is None:
            return []
        docs = [d for d in self.store.documents(kind)
                if (case_no is None or d.item_id == case_no)
                and (case_id is None or d.case_id == case_id)]
        return sorted(docs, key=lambda d: d.created, reverse=True)

    def reprint(self, doc_id: str) -> None:
        if self.store is None:
            raise StoreRefusedError(message_zh="本机未保存打印件", message_en="No printouts are kept here",
                                    code="no_printouts")
        self._print(self.store.get(doc_id))

    def purge(self, now: float | None = None) -> int:
        """Delete kept printouts older than the keep period (crypto-shredded by the store)."""
        if self.store is None:
            return 0
        cutoff = (now if now is not None else time.time()) - self.keep_s
        old = [d for d in self.store.documents() if d.created < cutoff]
        for d in old:
            self.store.delete(d.id)
        return len(old)

    def _print(self, pdf: bytes) -> None:
        print_once(pdf, self.spool)


def print_once(pdf: bytes, spool: Path) -> None:
    """Print `pdf` through a private spool file that is deleted once the printer has it."""
    spool.mkdir(parents=True, exist_ok=True)
    path = spool / f"{secrets.token_hex(8)}.pdf"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pdf)
    try:
        notice.print_pdf(path)
    finally:
        if sys.platform == "win32":  # ShellExecute prints after it returns
            timer = threading.Timer(WINDOWS_PRINT_GRACE_S, path.unlink, kwargs={"missing_ok": True})
            timer.daemon = True
            timer.start()
        else:
            path.unlink(missing_ok=True)
