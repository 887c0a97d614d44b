"""Several hall-server processes on PostgreSQL behind a real nginx, for tests/test_scale_*.py and
bench/bench_scale.py.

- `PrivatePostgres`: a PostgreSQL cluster of our own (initdb in a temp dir, loopback port), so a
  test may restart it without disturbing the suite's shared one.
- `Nginx`: nginx as a non-daemon child on a loopback port, its config written in a temp dir and
  including the shipped deploy/nginx/hall-proxy.conf (what CI runs is what IT deploys).
- `Cluster`: N `python -m hall_server serve` processes on their own ports behind that nginx.
- `Workload`: windows calling/completing/rating through plain requests, a ticket issuer and
  hall-wide /events subscribers that reconnect with Last-Event-ID; `Workload.verdict()` is the
  detector (double-assigned, lost, events missed per subscriber, ratings not exactly once).
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import threading
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

from tests.support.server_fixtures import (
    DEMO_PASSWORD,
    REPO_ROOT,
    ServerProcess,
    free_port,
    start_server_process,
)

PROXY_SNIPPET = REPO_ROOT / "deploy" / "nginx" / "hall-proxy.conf"
RETRY_STATUSES = {409, 502, 503, 504}  # 409: idempotency_in_progress (the twin still running)


def pg_bindir() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name)) \
        if Path("/usr/lib/postgresql").is_dir() else []
    return found[-1] if found else None


class PrivatePostgres:
    """initdb + pg_ctl on a temp folder (as the postgres user when we are root)."""

    def __init__(self) -> None:
        import tempfile

        bindir = pg_bindir()
        if bindir is None:
            raise RuntimeError("PostgreSQL binaries not found (Debian package postgresql)")
        self.bindir = bindir
        # In /tmp, not pytest's 0700 tmp_path: the postgres user must reach it.
        self.root = root = Path(tempfile.mkdtemp(prefix="scale-pg."))
        os.chmod(root, 0o755)
        if os.geteuid() == 0:
            shutil.chown(root, "postgres")
        self.data = root / "data"
        self.port = free_port()
        self.as_pg = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run([*self.as_pg, str(bindir / "initdb"), "-D", str(self.data), "-U", "postgres",
                        "-A", "trust"], check=True, stdout=subprocess.DEVNULL)
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _ctl(self, *args: str) -> None:
        subprocess.run([*self.as_pg, str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l",
                        str(self.root / "log"), *args], check=True, stdout=subprocess.DEVNULL)

    def start(self) -> None:
        self._ctl("-w", "-o", f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
                  "-c fsync=off -c max_connections=300", "start")

    def restart(self) -> None:
        """Stop (fast: every session is cut, as in a real restart) and start again."""
        self._ctl("-w", "-m", "fast", "stop")
        self.start()

    def stop(self) -> None:
        try:
            self._ctl("-m", "immediate", "stop")
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.root, ignore_errors=True)

    def create_db(self) -> str:
        from tests.support.server_fixtures import fresh_pg_url

        return fresh_pg_url(self.url)


class Nginx:
    """nginx in the foreground (`daemon off`) as our child, on 127.0.0.1:`port`."""

    def __init__(self, root: Path, upstreams: list[str], fail_timeout: str = "2s") -> None:
        self.root = root
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        root.mkdir(parents=True, exist_ok=True)
        for d in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (root / d).mkdir(exist_ok=True)
            os.chmod(root / d, 0o777)  # nginx's workers run as nobody when we are root
        servers = "\n".join(f"        server {u} max_fails=1 fail_timeout={fail_timeout};" for u in upstreams)
        conf = f"""
worker_processes 1;
daemon off;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {root}/body;
    proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fastcgi;
    uwsgi_temp_path {root}/uwsgi;
    scgi_temp_path {root}/scgi;
    upstream hall_servers {{
{servers}
        keepalive 64;
        keepalive_timeout 4s;  # as deploy/nginx/hall-server.conf: below uvicorn's 5 s
    }}
    server {{
        listen 127.0.0.1:{self.port};
        include {PROXY_SNIPPET};
    }}
}}
"""
        self.conf = root / "nginx.conf"
        self.conf.write_text(conf)
        exe = shutil.which("nginx") or "/usr/sbin/nginx"
        test = subprocess.run([exe, "-t", "-p", str(root), "-c", str(self.conf)], capture_output=True, text=True)
        if test.returncode != 0:
            raise RuntimeError("nginx config rejected:\n" + test.stderr)
        self.proc = subprocess.Popen([exe, "-p", str(root), "-c", str(self.conf)],
                                     stdout=subprocess.DEVNULL, stderr=open(root / "stderr.log", "wb"))
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("nginx exited: " + (root / "error.log").read_text(errors="replace"))
            try:
                requests.get(self.url + "/api/v1/health", timeout=1)
                return
            except requests.RequestException:
                time.sleep(0.05)
        raise RuntimeError("nginx did not start")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@dataclass
class Cluster:
    """N hall-server processes on one PostgreSQL database, behind one nginx."""

    db_url: str
    root: Path
    n: int
    env: dict[str, str] = field(default_factory=dict)
    servers: list[ServerProcess] = field(default_factory=list)
    nginx: Nginx | None = None

    def start(self) -> Cluster:
        # Every process of one hall signs with the same secret (its 0600 file, never the
        # database): a host with another secret refuses to start (docs/deploy.md section 7).
        self.env.setdefault("HALL_SECRET_FILE", str(self.root / "secret.key"))
        old = {k: os.environ.get(k) for k in self.env}
        os.environ.update(self.env)
        try:
            ports = [free_port() for _ in range(self.n)]
            # The first seeds the demo hall; the others find it (and the schema) in place.
            for i, port in enumerate(ports):
                self.servers.append(start_server_process(self.root / f"s{i}", port=port, db_url=self.db_url,
                                                         demo=(i == 0)))
        finally:
            for k, v in old.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        self.nginx = Nginx(self.root / "nginx", [s.url.removeprefix("http://") for s in self.servers])
        return self

    @property
    def url(self) -> str:
        assert self.nginx is not None
        return self.nginx.url

    def stop(self) -> None:
        if self.nginx is not None:
            self.nginx.stop()
        for s in self.servers:
            if s.poll() is None:
                s.terminate()


# ---- the workload and its detector ----------------------------------------------------------
def _session() -> requests.Session:
    s = requests.Session()
    s.trust_env = False
    return s


class Client:
    """Plain requests through the balancer; every write carries an Idempotency-Key and is
    retried under the same key on a cut connection, 502/503/504 or 409 in-progress."""

    def __init__(self, url: str, stop: threading.Event, retry_seconds: float = 60.0) -> None:
        self.url = url + "/api/v1"
        self.s = _session()
        self.token: str | None = None
        self.stop = stop
        self.retry_seconds = retry_seconds
        self.retries = 0
        self.statuses: Counter[int] = Counter()

    def call(self, method: str, path: str, body: Any = None, key: str | None = None) -> requests.Response:
        deadline = time.monotonic() + self.retry_seconds
        delay = 0.05
        while True:
            headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
            if key:
                headers["Idempotency-Key"] = key
            try:
                r = self.s.request(method, self.url + path, json=body, headers=headers, timeout=15)
                self.statuses[r.status_code] += 1
                if r.status_code not in RETRY_STATUSES or (r.status_code == 409 and "in_progress" not in r.text):
                    return r
            except requests.RequestException:
                self.statuses[0] += 1
                self.s.close()
                self.s = _session()
            if time.monotonic() > deadline:
                raise RuntimeError(f"{method} {path}: no answer within {self.retry_seconds} s")
            self.retries += 1
            time.sleep(delay)
            delay = min(delay * 2, 1.0)

    def login(self, staff_no: str, window_no: int | None) -> None:
        body: dict[str, Any] = {"staff_no": staff_no, "password": DEMO_PASSWORD}
        if window_no is not None:
            body["window_no"] = window_no
        r = self.call("POST", "/auth/login", body, key=str(uuid.uuid4()))
        if r.status_code != 200:
            raise AssertionError(f"login {staff_no}: {r.status_code} {r.text}")
        self.token = r.json()["access_token"]


@dataclass
class Subscriber:
    """A hall-wide /events stream that reconnects with Last-Event-ID (on a cut and, to test
    resume, every `reconnect_every` seconds)."""

    url: str
    token: str
    stop: threading.Event
    reconnect_every: float
    seen: dict[int, tuple[str, int | None]] = field(default_factory=dict)  # event id -> (type, ticket id)
    duplicates: int = 0
    reconnects: int = 0
    last_id: int | None = None
    error: str = ""

    def run(self) -> None:
        rng = random.Random(id(self))
        while not self.stop.is_set():
            headers = {"Authorization": f"Bearer {self.token}", "Accept": "text/event-stream"}
            if self.last_id is not None:
                headers["Last-Event-ID"] = str(self.last_id)
            until = time.monotonic() + self.reconnect_every * (0.5 + rng.random())
            try:
                with _session() as s, s.get(self.url + "/api/v1/events", headers=headers, stream=True,
                                            timeout=(3, 5)) as r:
                    if r.status_code != 200:
                        time.sleep(0.2)
                        continue
                    self._read(r, until)
            except (requests.RequestException, ValueError):
                pass
            self.reconnects += 1

    def _read(self, r: requests.Response, until: float) -> None:
        ev_id: int | None = None
        ev_type = ""
        for line in r.iter_lines(decode_unicode=True):
            if line is None:
                continue
            if line.startswith("id:"):
                ev_id = int(line[3:].strip())
            elif line.startswith("event:"):
                ev_type = line[6:].strip()
            elif line.startswith("data:") and ev_id is not None:
                import json

                data = json.loads(line[5:])
                tk = data.get("ticket")
                if ev_id in self.seen:
                    self.duplicates += 1
                self.seen[ev_id] = (ev_type, tk["id"] if isinstance(tk, dict) else None)
                self.last_id = ev_id
                ev_id = None
            if self.stop.is_set() or time.monotonic() > until:
                return

    def sorted_ids(self) -> list[int]:
        return sorted(self.seen)


@dataclass
class Workload:
    """12 windows calling and completing (and rating every other case), one issuer, hall-wide
    subscribers; all through `url` (the balancer)."""

    url: str
    windows: int = 12
    subscribers: int = 3
    issue_every: float = 0.01
    reconnect_every: float = 4.0
    stop_issuing: threading.Event = field(default_factory=threading.Event)
    stop_all: threading.Event = field(default_factory=threading.Event)
    issued: set[int] = field(default_factory=set)
    called_by: dict[int, set[int]] = field(default_factory=lambda: defaultdict(set))
    completed: set[int] = field(default_factory=set)
    rated_cases: dict[int, str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    subs: list[Subscriber] = field(default_factory=list)
    clients: list[Client] = field(default_factory=list)
    threads: list[threading.Thread] = field(default_factory=list)
    diagnostics: list[str] = field(default_factory=list)
    mark: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _guard(self, fn: Any, *args: Any) -> None:
        try:
            fn(*args)
        except Exception as e:  # noqa: BLE001 - reported by verdict()
            with self._lock:
                self.errors.append(f"{fn.__name__}{args}: {e!r}")

    def start(self) -> None:
        sup = Client(self.url, self.stop_all)
        sup.login("8001", None)
        self.clients.append(sup)
        cats = self._categories(sup)
        # Every subscriber starts from the hall's last event id before the run, as a desk
        # resuming: so "every event of every ticket" is exactly what each one must get.
        mark = self.mark = sup.call("GET", "/health/db").json()["last_event_id"] or 0
        for _ in range(self.subscribers):
            sub = Subscriber(self.url, str(sup.token), self.stop_all, self.reconnect_every, last_id=mark)
            self.subs.append(sub)
            self.threads.append(threading.Thread(target=self._guard, args=(sub.run,), daemon=True))
        for th in self.threads:
            th.start()
        more = [threading.Thread(target=self._guard, args=(self._issuer, cats), daemon=True)]
        for w in range(1, self.windows + 1):
            more.append(threading.Thread(target=self._guard, args=(self._window, w), daemon=True))
        for th in more:
            th.start()
        self.threads += more

    @staticmethod
    def _categories(c: Client) -> list[str]:
        r = c.call("GET", "/categories")
        body = r.json()
        items = body["categories"] if isinstance(body, dict) else body
        return [x["code"] for x in items]

    def _issue_one(self, c: Client, cat: str) -> None:
        r = c.call("POST", "/tickets", {"category": cat}, key=str(uuid.uuid4()))
        if r.status_code not in (200, 201):
            raise AssertionError(f"issue: {r.status_code} {r.text}")
        with self._lock:
            self.issued.add(int(r.json()["id"] if "id" in r.json() else r.json()["ticket"]["id"]))

    def _issuer(self, cats: list[str]) -> None:
        c = Client(self.url, self.stop_all)
        self.clients.append(c)
        rng = random.Random(7)
        while not self.stop_issuing.is_set():
            self._issue_one(c, rng.choice(cats))
            time.sleep(self.issue_every)

    def _window(self, no: int) -> None:
        c = Client(self.url, self.stop_all)
        self.clients.append(c)
        c.login(str(1000 + no), no)
        idle_since: float | None = None
        n = 0
        while not self.stop_all.is_set():
            r = c.call("POST", f"/windows/{no}/call-next", key=str(uuid.uuid4()))
            if r.status_code != 200:
                raise AssertionError(f"call-next {no}: {r.status_code} {r.text}")
            tk = r.json().get("ticket")
            if tk is None:
                if self.stop_issuing.is_set():
                    idle_since = idle_since or time.monotonic()
                    if time.monotonic() - idle_since > 1.5:
                        return  # the queue has drained for this window
                time.sleep(0.05)
                continue
            idle_since = None
            tid = int(tk["id"])
            with self._lock:
                self.called_by[tid].add(no)
            r = c.call("POST", f"/tickets/{tid}/complete", {"outcome": "completed"}, key=str(uuid.uuid4()))
            if r.status_code != 200:
                raise AssertionError(f"complete {tid}: {r.status_code} {r.text}")
            with self._lock:
                self.completed.add(tid)
            n += 1
            case_id = r.json()["ticket"]["case_id"]
            if n % 2 == 0 and case_id is not None:
                rid = str(uuid.uuid4())
                body = {"id": rid, "case_id": case_id, "window_no": no, "level": "satisfied",
                        "source": "desk", "rated_at": datetime.now(UTC).isoformat()}
                r = c.call("POST", "/ratings", body, key="rate-" + rid)
                if r.status_code != 201:
                    raise AssertionError(f"rating {case_id}: {r.status_code} {r.text}")
                with self._lock:
                    self.rated_cases[int(case_id)] = rid

    def finish(self, drain_timeout: float = 60.0) -> None:
        """Stop issuing, let the windows drain the queue, give subscribers time to catch up."""
        self.stop_issuing.set()
        deadline = time.monotonic() + drain_timeout
        for th in self.threads[self.subscribers:]:
            th.join(max(0.1, deadline - time.monotonic()))
        time.sleep(3.0)  # the last events reach every subscriber (they also resume on a timer)
        self.stop_all.set()
        for th in self.threads[: self.subscribers]:
            th.join(10)

    def verdict(self, db_url: str) -> dict[str, Any]:
        """The detector: every figure must be 0 for a correct system."""
        import psycopg

        dsn = db_url.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(dsn) as conn:
            db_called = dict(conn.execute("SELECT id, state FROM tickets").fetchall())
            ratings = Counter(r[0] for r in conn.execute("SELECT case_id FROM ratings").fetchall())
            all_ids = [r[0] for r in conn.execute("SELECT id FROM events ORDER BY id").fetchall()]
            rating_ids = {r[0] for r in conn.execute("SELECT id FROM ratings").fetchall()}
        double = sum(1 for ws in self.called_by.values() if len(ws) > 1)
        lost = sum(1 for t in self.issued if t not in self.completed or db_called.get(t) != "completed")
        need = ("ticket.issued", "ticket.called", "ticket.completed")
        missed_by_sub = []
        ids_missed_by_sub = []
        for no, sub in enumerate(self.subs):
            have: dict[int, set[str]] = defaultdict(set)
            for typ, tid in sub.seen.values():
                if tid is not None:
                    have[tid].add(typ)
            missed_by_sub.append(sum(1 for t in self.issued for typ in need if typ not in have[t]))
            # Stricter: every event committed after the start (window events too), by id.
            gone = [i for i in all_ids if i > self.mark and i not in sub.seen]
            ids_missed_by_sub.append(len(gone))
            if gone or missed_by_sub[-1]:
                self.diagnostics.append(f"subscriber {no}: last seen {max(sub.seen, default=None)}, db last "
                                        f"{all_ids[-1] if all_ids else None}, ids not seen {gone[:40]}")
        not_once = sum(1 for c in self.rated_cases if ratings.get(c) != 1)
        not_once += sum(1 for rid in self.rated_cases.values() if rid not in rating_ids)
        not_once += sum(1 for c, k in ratings.items() if k != 1)
        return {
            "tickets": len(self.issued), "completed": len(self.completed), "ratings": len(self.rated_cases),
            "double_assigned": double, "lost": lost,
            "ticket_events_missed": sum(missed_by_sub), "ticket_events_missed_per_subscriber": missed_by_sub,
            "event_ids_missed": sum(ids_missed_by_sub), "event_ids_missed_per_subscriber": ids_missed_by_sub,
            "diagnostics": list(self.diagnostics),
            "duplicate_events": sum(s.duplicates for s in self.subs),
            "ratings_not_exactly_once": not_once, "client_errors": list(self.errors),
            "reconnects": [s.reconnects for s in self.subs],
            "retries": sum(c.retries for c in self.clients),
            "statuses": dict(sum((c.statuses for c in self.clients), Counter())),
        }
