"""Uploads with two server processes on one data folder and one PostgreSQL (the scale-out set-up,
docs/deploy.md): a desk's retried chunk may reach the other process while the first is still
writing. Every chunk is written and committed under a lock both processes honour, so the same
chunk sent to both at once is taken once, a late duplicate is refused with the true offset, and
the document completes with the right digest (before: both truncated and wrote the same file and
the loser's truncate could cut the winner's next chunk)."""

from __future__ import annotations

import concurrent.futures
import hashlib
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.security.server_helpers import chunk, started_case
from tests.support.server_fixtures import (
    Api,
    drop_pg_db,
    fresh_pg_url,
    signed_in,
    start_server_process,
)

pytestmark = pytest.mark.postgres


@pytest.fixture
def two(tmp_path: Path) -> Iterator[SimpleNamespace]:
    base = os.environ.get("HALL_TEST_PG_URL")
    if not base:
        pytest.skip("HALL_TEST_PG_URL not set")
    url = fresh_pg_url(base)
    a = start_server_process(tmp_path / "hall", db_url=url)
    b = start_server_process(tmp_path / "hall", db_url=url)
    yield SimpleNamespace(a=a, b=b, data=tmp_path / "hall")
    a.terminate()
    b.terminate()
    drop_pg_db(url)


def _twin(api: Api, url: str) -> Api:
    """The same session (token) talking to the other process."""
    other = Api(url)
    other.token = api.token
    return other


def test_the_same_chunks_raced_to_both_processes_make_one_good_document(two: SimpleNamespace) -> None:
    wa = signed_in(two.a.url, "1001", 1)
    wb = _twin(wa, two.b.url)
    rounds = 6
    for n in range(rounds):
        ticket_id, case_id = started_case(wa, 1)
        data = os.urandom(600_000)
        r = wa.post(f"/cases/{case_id}/documents", json={
            "item_id": "id-card", "filename": f"scan{n}.pdf", "content_type": "application/pdf",
            "size": len(data), "sha256": hashlib.sha256(data).hexdigest()})
        assert r.status_code == 201, r.text
        uid = r.json()["upload_id"]
        step = 100_000
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            for off in range(0, len(data), step):
                piece = data[off:off + step]
                # Each chunk four times at once, twice to each process (a desk's retries).
                futs = [pool.submit(chunk, api, uid, off, piece) for api in (wa, wb, wa, wb)]
                codes = Counter(f.result().status_code for f in futs)
                assert codes[204] >= 1, (n, off, codes)
                assert set(codes) <= {204, 409}, (n, off, codes)
        status = wa.get(f"/uploads/{uid}").json()
        assert status["complete"], (n, status)
        # The server decrypted the whole stored file to compute this: it is exactly what was sent.
        assert status["receipt"]["sha256"] == hashlib.sha256(data).hexdigest()
        done = wa.post(f"/tickets/{ticket_id}/complete", json={"outcome": "completed"})
        assert done.status_code == 200, done.text
