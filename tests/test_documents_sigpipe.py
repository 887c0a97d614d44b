"""A SANE scan must not leave SIGPIPE at its default action: libsane's reader resets it, and a
desk that then writes to any closed pipe (a browser, a helper process) would die at once."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path


def test_sigpipe_is_ignored_again_after_a_scan(tmp_path: Path) -> None:
    conf = tmp_path / "sane"
    conf.mkdir()
    (conf / "dll.conf").write_text("test\n", encoding="utf-8")
    script = textwrap.dedent(
        """
        import os
        from counter_app.documents.sources import SaneSource, ScanSettings

        def ignored():
            for line in open("/proc/self/status"):
                if line.startswith("SigIgn"):
                    return bool(int(line.split()[1], 16) & (1 << 12))

        assert ignored()
        pages = list(SaneSource("test:0").capture(ScanSettings(resolution=75)))
        assert pages
        print("IGNORED" if ignored() else "DEFAULT")
        r, w = os.pipe()
        os.close(r)
        try:
            os.write(w, b"x")  # with SIGPIPE at its default this kills the process
        except BrokenPipeError:
            print("SURVIVED")
        """
    )
    env = dict(os.environ, SANE_CONFIG_DIR=str(conf),
               PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, (out.returncode, out.stdout, out.stderr[-2000:])
    assert out.stdout.split() == ["IGNORED", "SURVIVED"]
