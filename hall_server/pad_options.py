"""The pad's per-hall options from the command line (`hall-server serve --pad-option KEY=VALUE`).

Only the options a hall may set for its citizens (docs/pad.md): read-aloud and high contrast
for every citizen, the rating period and its countdown. Anything else is refused with a clear
zh + en message, before the server starts.
"""

from __future__ import annotations

from typing import Any

BOOLS = {"pad_speak", "pad_high_contrast"}
SECONDS = {"pad_rating_seconds": (15, 3600), "pad_warn_seconds": (3, 600)}


class PadOptionError(ValueError):
    """A `--pad-option` the server does not take; the message is zh + en."""


def parse_pad_options(items: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key, value = key.strip(), value.strip().lower()
        if not sep:
            raise PadOptionError(f"评价器选项应为 键=值：{item!r} / a pad option is KEY=VALUE: {item!r}")
        if key in BOOLS and value in ("on", "off", "true", "false", "1", "0"):
            out[key] = value in ("on", "true", "1")
        elif key in SECONDS and value.isdigit() and SECONDS[key][0] <= int(value) <= SECONDS[key][1]:
            out[key] = int(value)
        else:
            lo_hi = SECONDS.get(key)
            allowed = f"{lo_hi[0]}..{lo_hi[1]}" if lo_hi else "on|off" if key in BOOLS else ", ".join(
                sorted(BOOLS | set(SECONDS)))
            raise PadOptionError(f"评价器选项 {key!r} 的值无效（可用：{allowed}）/ "
                                 f"pad option {key!r}: invalid (allowed: {allowed})")
    return out
