"""The desk's search words: short forms and common names mapped to the catalog's wording.

Clerks type "sbk" or "社保卡"; the catalog says "社会保障卡". ``Synonyms.expand`` turns a query
into the extra queries to run with the names' wording; ``Catalog.search`` merges their hits.
The list shipped with the desk is ``counter_app/synonyms.toml``; a hall extends it with a file
of the same format, ``synonyms.toml`` beside the machine config (or ``$COUNTER_SYNONYMS``):
its words add to the shipped ones. A broken hall file is logged for IT and skipped: the shipped
list still works and nothing else fails.
"""

from __future__ import annotations

import logging
import os
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from counter_app.search import normalize

log = logging.getLogger(__name__)

HALL_FILE = "synonyms.toml"
MAX_EXTRA_QUERIES = 6  # a query rarely holds more than one or two short forms


def hall_synonyms_path() -> Path:
    """Where a hall's own words live: beside the machine config (env COUNTER_SYNONYMS overrides)."""
    env = os.environ.get("COUNTER_SYNONYMS")
    if env:
        return Path(env)
    from counter_app.config import machine_config_path

    return machine_config_path().parent / HALL_FILE


def _parse(text: str, source: str) -> dict[str, list[str]]:
    """{alias: [name wordings]} from a synonyms file's text (normalised, as queries are)."""
    data = tomllib.loads(text)
    terms = data.get("terms", {})
    if not isinstance(terms, dict):
        raise ValueError(f"{source}: [terms] must be a table")
    out: dict[str, list[str]] = {}
    for name, aliases in terms.items():
        if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
            raise ValueError(f"{source}: {name!r} must map to a list of strings")
        wording = normalize(name)
        for alias in aliases:
            a = normalize(alias)
            if a and wording and a != wording and wording not in out.get(a, []):
                out.setdefault(a, []).append(wording)
    return out


@dataclass(frozen=True)
class Synonyms:
    """Immutable alias table; ``expand`` is pure string work (safe on the Tk thread)."""

    table: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def load(cls, hall_file: Path | None = None) -> Synonyms:
        """The shipped words plus the hall's (if its file exists and reads)."""
        try:
            shipped = (resources.files("counter_app") / "synonyms.toml").read_text(encoding="utf-8")
            table = _parse(shipped, "counter_app/synonyms.toml")
        except (OSError, ValueError) as exc:  # a broken bundle: search still works, by the names
            log.error("shipped search words missing: %s", exc)
            table = {}
        path = hall_file if hall_file is not None else hall_synonyms_path()
        if path.is_file():
            try:
                extra = _parse(path.read_text(encoding="utf-8"), str(path))
            except (OSError, UnicodeDecodeError, ValueError) as exc:  # TOMLDecodeError is a ValueError
                log.warning("hall search words not used (the shipped ones are): %s: %s", path, exc)
            else:
                for alias, words in extra.items():
                    table[alias] = table.get(alias, []) + [w for w in words if w not in table.get(alias, [])]
                log.info("hall search words: %d from %s", len(extra), path)
        return cls(table)

    def expand(self, text: str) -> tuple[bool, list[str]]:
        """(whole query is a short form, the extra queries in the names' wording)."""
        q = normalize(text)
        if not q:
            return False, []
        out: list[str] = []
        # Longest aliases first, so "社保卡" is replaced as a whole before "社保".
        # A short Latin alias ("sb") only counts as the whole query: inside a longer one it is
        # usually part of other initials.
        hits = (a for a in self.table if a == q or (a in q and not (a.isascii() and len(a) < 3)))
        for alias in sorted(hits, key=len, reverse=True):
            for wording in self.table[alias]:
                alt = q.replace(alias, wording)
                if alt not in out and alt != q:
                    out.append(alt)
            if len(out) >= MAX_EXTRA_QUERIES:
                break
        return q in self.table, out[:MAX_EXTRA_QUERIES]
