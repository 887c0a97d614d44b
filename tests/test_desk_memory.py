"""Desk memory: pypinyin (~50 MB of dictionaries as Python objects) is loaded only while
catalog syncs compute pinyin keys, and let go shortly after the last one (docs/performance.md,
"Desk memory").

Measured in a fresh interpreter each time (another test may have imported pypinyin here): the
live Python heap after a sync that computed keys, with tracemalloc, and that the next sync that
meets a new name imports it again and still finds the matter by its initials.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
from pathlib import Path

from counter_app import search

ROOT = Path(__file__).resolve().parents[1]

_CHILD = r"""
import gc, json, sys, tempfile, time, tracemalloc
from pathlib import Path
tracemalloc.start()
from counter_app import search
search.RELEASE_AFTER_S = 0.2  # 2 s in the desk
from counter_app.catalog import Catalog
from tests.test_catalog import FakeSource
source = FakeSource()
cat = Catalog(Path(tempfile.mkdtemp()) / "catalog.db", source)
before = tracemalloc.get_traced_memory()[0]
cat.sync()
loaded_at_once = "pypinyin" in sys.modules
time.sleep(1.5)
gc.collect()
after_first = tracemalloc.get_traced_memory()[0]
loaded_after_first = "pypinyin" in sys.modules
source.put("Z0001", "银行业务登记", "Bank business registration")
cat.sync()
found = [m.code for m in cat.search("yhywdj")]
time.sleep(1.5)
print(json.dumps(dict(before=before, after_first=after_first, found=found,
                      loaded_at_once=loaded_at_once,
                      loaded_after_first=loaded_after_first,
                      loaded_after_second="pypinyin" in sys.modules)))
"""


def test_keys_revision_names_the_installed_pypinyin() -> None:
    # The revision is known without importing pypinyin; it must still follow the installed one,
    # or keys made by another dictionary release would never be recomputed.
    assert search.PYPINYIN_VERSION == importlib.metadata.version("pypinyin")
    assert search.keys_revision().endswith("pypinyin-" + search.PYPINYIN_VERSION)


def test_a_sync_lets_pypinyin_go_and_the_next_one_loads_it_again() -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    r = subprocess.run([sys.executable, "-c", _CHILD], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    d = json.loads(r.stdout.strip().splitlines()[-1])
    # The first sync lets it go at once (before building its index).
    assert d["loaded_at_once"] is False
    assert d["loaded_after_first"] is False and d["loaded_after_second"] is False
    # With pypinyin kept, the heap after the first sync was ~50 MB above the start.
    grown_mb = (d["after_first"] - d["before"]) / 2**20
    assert grown_mb < 10, f"{grown_mb:.1f} MB still live after the sync"
    assert d["found"] == ["Z0001"]  # re-imported for the new name: keys still right
