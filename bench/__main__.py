"""Run every benchmark (or the named ones) and print one JSON object per line.

    python -m bench                 # all of bench/bench_*.py
    python -m bench server outbox   # bench_server.py and bench_outbox.py only
    python -m bench --check         # also exit 1 when a line misses its target
    python -m bench --markdown F    # also write the figures as a Markdown table to F

Each module exposes `run() -> list[dict]`; a module that fails prints an error line and the
others still run.
"""

from __future__ import annotations

import argparse
import importlib
import json
import pkgutil
import sys
import traceback
from pathlib import Path

from bench.common import check_target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("names", nargs="*", help="benchmark modules without the bench_ prefix")
    parser.add_argument("--check", action="store_true", help="exit 1 if any target is missed")
    parser.add_argument("--markdown", metavar="FILE", help="also write a Markdown table of the figures")
    args = parser.parse_args(argv)
    here = Path(__file__).parent
    available = sorted(m.name[len("bench_"):] for m in pkgutil.iter_modules([str(here)])
                       if m.name.startswith("bench_"))
    names = args.names or available
    missed = 0
    rows: list[dict[str, object]] = []
    for name in names:
        if name not in available:
            print(json.dumps({"name": f"{name}_error", "error": "no such benchmark",
                              "available": available}), flush=True)
            missed += 1
            continue
        try:
            module = importlib.import_module(f"bench.bench_{name}")
            for line in module.run():
                ok = check_target(line)
                if ok is False:
                    missed += 1
                rows.append(dict(line, met=ok))
                print(json.dumps(line, ensure_ascii=False), flush=True)
        except Exception as exc:  # a broken benchmark must not hide the others
            traceback.print_exc(file=sys.stderr)
            print(json.dumps({"name": f"{name}_error", "error": repr(exc)}), flush=True)
            rows.append({"name": f"{name}_error", "value": repr(exc), "met": False})
            missed += 1
    if args.markdown:
        Path(args.markdown).write_text(markdown_table(rows), encoding="utf-8")
    return 1 if (args.check and missed) else 0


def markdown_table(rows: list[dict[str, object]]) -> str:
    """The figures as docs/performance.md shows them: one row per line, target met or not."""
    out = ["| figure | value | floor | ratio | target | met | n |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        met = {True: "yes", False: "**no**", None: ""}[r.get("met")]  # type: ignore[index]
        out.append("| {} | {} | {} | {} | {} | {} | {} |".format(
            r.get("name", ""), r.get("value", r.get("error", "")), r.get("floor", ""),
            r.get("ratio", ""), r.get("target", ""), met, r.get("n", "")))
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
