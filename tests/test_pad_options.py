"""`hall-server serve --pad-option KEY=VALUE`: the pad's per-hall options (issue 16 item 10: read
aloud on by default, a hall may fix it or high contrast for every citizen). Good values reach
Settings; anything else stops the real CLI before it serves, with a zh + en message."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from hall_server.pad_options import PadOptionError, parse_pad_options
from hall_server.settings import Settings


def test_good_options_become_settings(tmp_path: Path) -> None:
    got = parse_pad_options(["pad_speak=off", "pad_high_contrast=on", "pad_rating_seconds=120",
                             "pad_warn_seconds=15"])
    assert got == {"pad_speak": False, "pad_high_contrast": True, "pad_rating_seconds": 120,
                   "pad_warn_seconds": 15}
    s = Settings(data_dir=tmp_path, **got)
    assert (s.pad_speak, s.pad_high_contrast, s.pad_rating_seconds) == (False, True, 120)
    assert Settings(data_dir=tmp_path).pad_speak is True  # on unless the hall says otherwise


@pytest.mark.parametrize("bad", ["pad_speak=maybe", "pad_rating_seconds=2", "secret_key=x", "pad_speak"])
def test_bad_options_are_refused(bad: str) -> None:
    with pytest.raises(PadOptionError) as exc:
        parse_pad_options([bad])
    assert "评价器选项" in str(exc.value) and "pad option" in str(exc.value)


def test_the_cli_refuses_before_serving(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "hall_server", "serve", "--data-dir", str(tmp_path),
                        "--demo", "--port", "1", "--pad-option", "pad_speak=maybe"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1
    assert "评价器选项" in r.stderr and "pad option 'pad_speak'" in r.stderr
