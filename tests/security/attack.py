"""`python -m tests.security.attack URL`: run every live attack against a hall server.

Runs each `attack_*` function of the modules in `MODULES` (one explicit list: a module is added
here when it is written, never discovered by name) against the server at URL, prints one line per
attempt (BLOCKED/ACCEPTED, the attack's name, what was tried, the HTTP status, the short answer)
and a summary. Exit code: 1 if any attack was accepted, 2 if none was but an attack crashed
(a crashed attack proves nothing), 0 if every attempt was blocked.

Options: `--only SUBSTRING` runs the attacks whose name contains it; `--ca-bundle PEM` for an
https server with the hall's CA; `--json` prints JSON lines instead. Demo credentials are what
the attacks use (staff 1001..1012 / demo1234 at windows 1..12, supervisor 8001, IT admin 9001):
point it at a demo server (`hall-server serve --demo`), never at a production hall.
"""

from __future__ import annotations

import argparse
import inspect
import json
import sys
import traceback
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import TextIO

from tests.security import (
    attacks_applicant,
    attacks_console,
    attacks_desk,
    attacks_display,
    attacks_followup,
    attacks_hall,
    attacks_lifecycle,
    attacks_pad,
    attacks_padux,
    attacks_provision,
    attacks_server,
)
from tests.security.attack_base import AttackContext, AttackResult

# Each area's helper adds its module here (attacks_server, attacks_pad at merge).
MODULES: list[ModuleType] = [attacks_server, attacks_pad, attacks_desk, attacks_hall,
                             attacks_console, attacks_display, attacks_applicant,
                             attacks_provision, attacks_lifecycle, attacks_followup,
                             attacks_padux]

Attack = Callable[[str, AttackContext], "AttackResult | list[AttackResult]"]


def collect(modules: Sequence[ModuleType]) -> list[tuple[str, Attack]]:
    """Every `attack_*` function of `modules`, in source order, named `<area>.<name>`."""
    found: list[tuple[str, Attack]] = []
    for mod in modules:
        area = mod.__name__.rsplit(".", 1)[-1].removeprefix("attacks_")
        fns = [(name, fn) for name, fn in inspect.getmembers(mod, inspect.isfunction)
               if name.startswith("attack_") and fn.__module__ == mod.__name__]
        fns.sort(key=lambda item: item[1].__code__.co_firstlineno)
        found += [(f"{area}.{name.removeprefix('attack_')}", fn) for name, fn in fns]
    return found


def run(base_url: str, modules: Sequence[ModuleType], out: TextIO, *, only: str = "",
        verify: bool | str = True, as_json: bool = False) -> int:
    accepted = blocked = crashed = 0
    for name, fn in collect(modules):
        if only and only not in name:
            continue
        ctx = AttackContext(base_url, verify=verify)
        try:
            got = fn(base_url, ctx)
            results = got if isinstance(got, list) else [got]
        except Exception as exc:  # an attack's own failure is reported, the run goes on
            crashed += 1
            detail = traceback.format_exception_only(type(exc), exc)[-1].strip()
            if as_json:
                print(json.dumps({"name": name, "error": detail}), file=out)
            else:
                print(f"ERROR    {name}: the attack itself failed: {detail}", file=out)
            continue
        finally:
            ctx.close()
        for r in results:
            if r.blocked:
                blocked += 1
            else:
                accepted += 1
            if as_json:
                print(json.dumps({"name": r.name, "attempt": r.attempt, "status": r.status,
                                  "answer": r.answer, "blocked": r.blocked},
                                 ensure_ascii=False), file=out)
            else:
                print(r.render(), file=out)
        out.flush()
    summary = (f"attacks: {blocked + accepted} attempts, {blocked} blocked, {accepted} accepted"
               f", {crashed} crashed")
    print(json.dumps({"summary": summary}) if as_json else summary, file=out)
    return 1 if accepted else 2 if crashed else 0


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.security.attack",
                                description="Run the live attack suite against a hall server")
    p.add_argument("url", help="hall server root, e.g. http://127.0.0.1:8123")
    p.add_argument("--only", default="", help="run only attacks whose name contains this")
    p.add_argument("--ca-bundle", help="PEM file of the CA of an https server")
    p.add_argument("--json", action="store_true", help="JSON lines instead of text")
    args = p.parse_args(argv)
    return run(args.url, MODULES, sys.stdout, only=args.only,
               verify=args.ca_bundle or True, as_json=args.json)


if __name__ == "__main__":
    sys.exit(main())
