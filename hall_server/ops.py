"""Server operations for IT: bulk enrollment codes, backup and restore, TLS serving options.

- `hall-server enrollment-codes --windows 1-30 --out codes.csv`: one fresh one-time code per
  window, written as CSV (window, code, expires_at) to a file created 0600 (the codes enrol PCs:
  they are secrets until used). The file is written completely or not at all.
- `hall-server backup --out FILE`: SQLite through its online backup API (a consistent copy while
  the server keeps writing; no need to stop it); PostgreSQL through `pg_dump --format=custom`.
- `hall-server restore --from FILE`: stop every hall-server process of the hall first. SQLite:
  the backup is checked (integrity and a hall schema), then copied into the database through the
  backup API; PostgreSQL: `pg_restore --clean --if-exists --no-owner`. Keep the data folder's
  `secret.key` (and `applicant.key`) with the backups: they are not in the database, and a
  database without its secret cannot decrypt documents or verify the server's check value.
"""

from __future__ import annotations

import csv
import io
import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from hall_server.admin import enrollment_code_op

_RANGE = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$")


def parse_windows(spec: str) -> list[int]:
    """`1-30`, `1,3,5-8` -> window numbers in order, each once; ValueError on anything else."""
    out: dict[int, None] = {}
    for part in spec.split(","):
        m = _RANGE.match(part)
        if not m:
            raise ValueError(f"--windows: {part!r} is not a number or a range like 1-30 / "
                             f"窗口范围格式不对（例如 1-30 或 1,3,5-8）")
        lo = int(m.group(1))
        hi = int(m.group(2) or lo)
        if hi < lo or hi - lo > 10_000:
            raise ValueError(f"--windows: bad range {part!r} / 窗口范围不对：{part!r}")
        for n in range(lo, hi + 1):
            out[n] = None
    return list(out)


def write_private(path: Path, text: str) -> None:
    """Write `text` to `path` as a new 0600 file, atomically (a crash leaves no partial file)."""
    path = path.resolve()
    fd, tmp = tempfile.mkstemp(prefix=".codes-", dir=path.parent)  # mkstemp creates it 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def enrollment_codes(store: Any, windows: list[int], out: Path, lifetime_s: int, actor: str) -> dict[str, Any]:
    """One code per window in ONE transaction (an unknown window makes none), then the CSV."""
    def fn(tx: Any) -> list[dict[str, Any]]:
        return [enrollment_code_op(tx, no, lifetime_s, actor=actor) for no in windows]

    rows = store.write_sync(fn)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["window", "code", "expires_at"])
    for r in rows:
        w.writerow([r["window_no"], r["code"], r["expires_at"]])
    write_private(out, buf.getvalue())
    return {"file": str(out), "windows": len(rows), "expires_at": rows[-1]["expires_at"] if rows else None}


def _sqlite_path(url: str) -> Path | None:
    return Path(url[len("sqlite:///"):]) if url.startswith("sqlite:///") else None


def _libpq_url(url: str) -> str:
    """SQLAlchemy's `postgresql+psycopg://` -> the `postgresql://` libpq tools take."""
    return re.sub(r"^postgresql\+\w+://", "postgresql://", url)


def _pg_tool(name: str) -> str:
    exe = shutil.which(name)
    if exe is None:
        raise OSError(f"{name} not found: install the PostgreSQL client (apt install postgresql-client) / "
                      f"找不到 {name}：请安装 PostgreSQL 客户端")
    return exe


def backup(url: str, out: Path) -> dict[str, Any]:
    """A consistent copy of the hall database at `out` (0600), while the server runs."""
    out = out.resolve()
    db = _sqlite_path(url)
    if db is not None:
        if not db.exists():
            raise OSError(f"no database at {db} / 数据库文件不存在：{db}")
        fd, tmp = tempfile.mkstemp(prefix=".backup-", dir=out.parent)
        os.close(fd)
        try:
            src = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
            dst = sqlite3.connect(tmp)
            try:
                # The online backup API copies page by page and restarts when a writer changes
                # the source meanwhile: the result is one consistent snapshot.
                src.backup(dst)
            finally:
                dst.close()
                src.close()
            os.chmod(tmp, 0o600)
            os.replace(tmp, out)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return {"backup": str(out), "database": "sqlite", "bytes": out.stat().st_size}
    if url.startswith("postgresql"):
        fd = os.open(out, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
        os.close(fd)
        r = subprocess.run([_pg_tool("pg_dump"), "--format=custom", "--no-owner", "--file", str(out),
                            "--dbname", _libpq_url(url)], capture_output=True, text=True, timeout=3600)
        if r.returncode != 0:
            out.unlink(missing_ok=True)
            raise OSError(f"pg_dump failed: {r.stderr.strip()[-500:]}")
        return {"backup": str(out), "database": "postgresql", "bytes": out.stat().st_size}
    raise ValueError(f"backup supports SQLite and PostgreSQL, not {url.split(':')[0]}")


def restore(url: str, src: Path) -> dict[str, Any]:
    """Replace the hall database with the backup `src` (every server of the hall stopped)."""
    if not src.is_file():
        raise OSError(f"no backup at {src} / 备份文件不存在：{src}")
    db = _sqlite_path(url)
    if db is not None:
        check = sqlite3.connect(f"file:{src.resolve()}?mode=ro", uri=True)
        try:
            ok = check.execute("PRAGMA integrity_check").fetchone()
            has_schema = check.execute(
                "SELECT 1 FROM sqlite_master WHERE type='table' AND name='alembic_version'").fetchone()
        except sqlite3.DatabaseError as e:
            raise ValueError(f"{src} is not a SQLite hall backup ({e}) / 不是大厅数据库备份") from None
        finally:
            check.close()
        if not ok or ok[0] != "ok" or not has_schema:
            raise ValueError(f"{src} is not a sound hall backup / 备份文件损坏或不是大厅数据库")
        db.parent.mkdir(parents=True, exist_ok=True)
        if not db.exists():
            os.close(os.open(db, os.O_CREAT | os.O_WRONLY, 0o600))
        s = sqlite3.connect(f"file:{src.resolve()}?mode=ro", uri=True)
        d = sqlite3.connect(db, timeout=30)
        try:
            s.backup(d)  # writes through SQLite's locks and journal: never a torn database file
        finally:
            d.close()
            s.close()
        return {"restored": str(db), "from": str(src), "database": "sqlite"}
    if url.startswith("postgresql"):
        r = subprocess.run([_pg_tool("pg_restore"), "--clean", "--if-exists", "--no-owner",
                            "--single-transaction", "--dbname", _libpq_url(url), str(src)],
                           capture_output=True, text=True, timeout=3600)
        if r.returncode != 0:
            raise OSError(f"pg_restore failed: {r.stderr.strip()[-500:]}")
        return {"restored": _libpq_url(url).split("@")[-1], "from": str(src), "database": "postgresql"}
    raise ValueError(f"restore supports SQLite and PostgreSQL, not {url.split(':')[0]}")


def add_parsers(sub: Any, common: Any) -> None:
    """The subcommands of this module (hall_server/cli.py registers them)."""
    e = sub.add_parser("enrollment-codes", help="one-time enrollment codes for many windows, as a 0600 CSV")
    common(e)
    e.add_argument("--windows", required=True, help="window numbers, e.g. 1-30 or 1,3,5-8")
    e.add_argument("--out", required=True, type=Path, help="CSV file to write (window,code,expires_at)")
    b = sub.add_parser("backup", help="copy the hall database consistently while the server runs")
    common(b)
    b.add_argument("--out", required=True, type=Path)
    r = sub.add_parser("restore", help="replace the hall database with a backup (servers stopped)")
    common(r)
    r.add_argument("--from", dest="source", required=True, type=Path)


COMMANDS = {"enrollment-codes", "backup", "restore"}


def dispatch(ns: Any, store_of: Any, settings: Any) -> dict[str, Any]:
    from hall_server.hallcli import actor

    if ns.cmd == "enrollment-codes":
        windows = parse_windows(ns.windows)
        store = store_of(ns)
        try:
            return enrollment_codes(store, windows, ns.out, settings.enrollment_code_seconds, actor())
        finally:
            store.close()
    url = settings.database_url()
    if ns.cmd == "backup":
        return backup(url, ns.out)
    return restore(url, ns.source)
