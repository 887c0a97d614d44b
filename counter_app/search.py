"""Matter search: the pinyin keys computed at sync, and the in-memory index filtered per keystroke.

Two halves, on purpose kept apart:

* ``compute_keys(name_zh)`` runs pypinyin. It costs ~0.2 ms per name (~2 s for 10,000), so the
  catalog calls it only while syncing and stores the result; opening the catalog never calls it.
* ``SearchIndex`` is built from the stored keys (cheap string work only) and answers a query
  with plain ``in`` tests over precomputed lowercase strings, which is what keeps one keystroke
  over 10,000 matters under 2 ms in CPython: one ``in`` per matter to find the candidates, sorted
  arrays and bisect for the prefix tiers, and an early stop once ``limit`` results are ranked.
  When a query extends the previous one (the staff member typing on), only the previous
  candidates are filtered again; backspacing reuses the candidates kept for the shorter query.

Ranking, best first: exact code; code prefix; prefix of the Chinese name, pinyin initials, full
pinyin or English name; the Chinese name containing the query, a pinyin/initials match starting
at a syllable, an English word starting with the query; then any other substring. Within a tier,
shorter names come first (a short name that matches is usually the matter meant), then by code.

Thread-safety: an index is immutable apart from its keystroke history, which is replaced as one
tuple, so ``search`` may be called from any thread (the Tk thread included: it does no I/O).
"""

from __future__ import annotations

import heapq
import re
import threading
import time
import unicodedata
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

# Bump when the way keys are computed changes: stored keys of another revision are recomputed at
# the next sync (never at open). Includes the pypinyin version because its dictionaries change.
KEYS_ALGORITHM = 1

_HAN_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f]+")
_TOKEN = re.compile(r"[a-z0-9]+")
_SPACES = re.compile(r"\s+")
# Field separators inside the per-matter haystack: never produced by normalisation of a query.
_FIELD = "\x1f"
_START = "\x00"
# How many earlier queries (the chain being typed) keep their candidates for backspacing.
_HISTORY = 32


# The pypinyin release whose dictionaries made the stored keys: pinned in pyproject.toml and
# checked against the installed package by tests/test_desk_memory.py, so the revision is known
# without importing pypinyin (its dictionaries are ~50 MB of Python objects).
PYPINYIN_VERSION = "0.55.0"


def keys_revision() -> str:
    """The revision stored beside the keys; a different one means "recompute at next sync"."""
    return f"{KEYS_ALGORITHM}/pypinyin-{PYPINYIN_VERSION}"


def release_pypinyin() -> bool:
    """Unload pypinyin now; True if it was loaded. See ``release_pypinyin_after_sync``."""
    import gc
    import sys

    global _released_at
    names = [n for n in sys.modules if n == "pypinyin" or n.startswith("pypinyin.")]
    for name in names:
        sys.modules.pop(name, None)
    if names:
        gc.collect()
    _released_at = time.monotonic()
    return bool(names)


# A sync within this long of the last release keeps pypinyin for this long after it instead.
RELEASE_AFTER_S = 2.0
_release_lock = threading.Lock()
_release_timer: threading.Timer | None = None
_released_at = float("-inf")


def release_pypinyin_after_sync() -> None:
    """Let pypinyin go after a sync that computed keys with it: at once, or in a burst of
    syncs ``RELEASE_AFTER_S`` after the last one.

    Importing pypinyin builds its phrase, character and segmentation dictionaries as Python
    objects: ~50 MB of the desk's heap (55 MB RSS measured), kept for the life of the process
    although only a sync that meets a new or renamed matter needs them. Dropping its modules
    from ``sys.modules`` lets the cycle collector free them; the next such sync imports it again
    (~0.2 s plus the collection). At once matters: released before the sync builds its rows and
    index, the freed memory is reused by them (released later, the day's objects sit above the
    hole and RSS stays ~15 MB higher: 133 vs 118 MB after a day). Only a sync soon after the
    last release (a burst) defers it, so a burst imports pypinyin twice, not once per sync. A
    thread still inside ``lazy_pinyin`` keeps its own references and finishes normally.
    Nothing else in the desk imports pypinyin.
    """
    global _release_timer
    with _release_lock:
        if _release_timer is not None:
            _release_timer.cancel()
            _release_timer = None
        if time.monotonic() - _released_at >= RELEASE_AFTER_S:
            release_pypinyin()
            return
        _release_timer = threading.Timer(RELEASE_AFTER_S, release_pypinyin)
        _release_timer.name = "pypinyin-release"
        _release_timer.daemon = True
        _release_timer.start()


def normalize(text: str) -> str:
    """NFKC (full-width letters and digits to ASCII), lower case, runs of spaces to one."""
    return _SPACES.sub(" ", unicodedata.normalize("NFKC", text).lower()).strip()


def compute_keys(name_zh: str) -> tuple[str, str]:
    """(full pinyin as space-separated syllables, initials) of a Chinese matter name.

    Expensive (pypinyin): call at sync only. Letters and digits that are not Chinese are kept
    as whole tokens in both keys ("ICP" stays "icp" in the initials too, as people type it).

    >>> compute_keys("个体工商户设立登记")
    ('ge ti gong shang hu she li deng ji', 'gtgshsldj')
    """
    from pypinyin import lazy_pinyin  # local: see keys_revision

    text = normalize(name_zh)
    syllables: list[str] = []
    initials: list[str] = []
    pos = 0
    for match in _HAN_RUN.finditer(text):
        for token in _TOKEN.findall(text[pos:match.start()]):
            syllables.append(token)
            initials.append(token)
        # One call per run of Chinese characters so pypinyin's phrase dictionary picks the
        # reading in context (银行 yin hang, 行政 xing zheng). Characters it cannot read
        # come back unchanged and yield no token.
        for syllable in lazy_pinyin(match.group()):
            for token in _TOKEN.findall(syllable.lower()):
                syllables.append(token)
                initials.append(token[0])
        pos = match.end()
    for token in _TOKEN.findall(text[pos:]):
        syllables.append(token)
        initials.append(token)
    return " ".join(syllables), "".join(initials)


@dataclass(frozen=True)
class IndexEntry:
    """What the index needs of one matter: names, code and the keys stored at sync."""

    code: str
    name_zh: str
    name_en: str
    pinyin: str  # space-separated syllables, from compute_keys
    initials: str


def _suffixes(parts: Sequence[str], joiner: str) -> list[str]:
    return [joiner.join(parts[i:]) for i in range(len(parts))]


class _Prefix:
    """A sorted key array answering "which entries have a key starting with q" by bisect."""

    __slots__ = ("keys", "ids")

    def __init__(self, keys: Sequence[str]) -> None:
        # Sorting ids by key (stable: equal keys keep the index order) avoids building tuples.
        self.ids = sorted((i for i, k in enumerate(keys) if k), key=keys.__getitem__)
        self.keys = [keys[i] for i in self.ids]

    def starting_with(self, q: str) -> list[int]:
        lo = bisect_left(self.keys, q)
        hi = bisect_left(self.keys, q + "\U0010ffff", lo)
        return self.ids[lo:hi]


class SearchIndex:
    """Immutable keys of a whole catalog; ``search`` returns matter codes, best first."""

    def __init__(self, entries: Iterable[IndexEntry]) -> None:
        items = sorted(entries, key=lambda e: (len(e.name_zh), e.code))
        self.codes: list[str] = [e.code for e in items]
        names = [normalize(e.name_zh).replace(" ", "") for e in items]
        english = [normalize(e.name_en) for e in items]
        codes_l = [e.code.lower() for e in items]
        pinyin = [e.pinyin.split() for e in items]
        compact = ["".join(p) for p in pinyin]
        initials = [e.initials for e in items]
        self._names = names
        # One string per matter for the candidate test: one `in` instead of five. Two of them,
        # because CPython copies an ASCII needle into the wider form of a haystack holding
        # Chinese on every `in` (3x slower for "ws" over 10,000 names): ASCII queries (pinyin,
        # initials, codes, English) search ASCII keys; other queries the names. Latin letters
        # and digits of Chinese names are pinyin tokens too, so nothing is lost.
        self._hay_ascii = [
            _FIELD.join((c, p, i, en))
            for c, p, i, en in zip(codes_l, compact, initials, english, strict=True)
        ]
        self._hay_text = [n + _FIELD + en for n, en in zip(names, english, strict=True)]
        # Every suffix that starts at a syllable / an initial / an English word, each preceded
        # by _START, so "a match starting at a boundary" is a single `in` test.
        self._starts = [
            _START
            + _START.join(
                _suffixes(p, "") + [ini[k:] for k in range(len(ini))] + _suffixes(en.split(" "), " ")
            )
            for p, ini, en in zip(pinyin, initials, english, strict=True)
        ]
        self._by_code = {c: i for i, c in enumerate(codes_l)}
        self._code_prefix = _Prefix(codes_l)
        self._prefixes = [_Prefix(keys) for keys in (names, compact, initials, english)]
        self._by_code_order = sorted(range(len(items)), key=lambda i: codes_l[i])
        # Chain of (query, candidates) typed so far; replaced as a whole (thread-safe enough:
        # a racing search only loses a cache entry, never gets wrong candidates).
        self._history: tuple[tuple[str, list[int]], ...] = ()

    def __len__(self) -> int:
        return len(self.codes)

    def _candidates(self, q: str, qc: str) -> list[int]:
        history = list(self._history)
        ascii_q = q.isascii()
        # Narrow only within the same haystack (see __init__).
        while history and not (
            q.startswith(history[-1][0]) and history[-1][0].isascii() == ascii_q
        ):
            history.pop()
        if history and history[-1][0] == q:
            return history[-1][1]
        hay = self._hay_ascii if ascii_q else self._hay_text
        if history:
            # Narrowing: whatever matches the longer query matched its prefix.
            base = history[-1][1]
            if q == qc:
                found = [i for i in base if q in hay[i]]
            else:
                found = [i for i in base if qc in hay[i] or q in hay[i]]
        elif q == qc:
            found = [i for i, h in enumerate(hay) if q in h]
        else:
            found = [i for i, h in enumerate(hay) if qc in h or q in h]
        history.append((q, found))
        self._history = tuple(history[-_HISTORY:])
        return found

    def search(self, text: str, limit: int = 50) -> list[str]:
        """Codes of the matters matching ``text``, best first, at most ``limit``."""
        if limit <= 0:
            return []
        q = normalize(text)
        if not q:
            return [self.codes[i] for i in self._by_code_order[:limit]]
        qc = q.replace(" ", "")
        candidates = self._candidates(q, qc)
        if not candidates:
            return []
        taken: set[int] = set()
        out: list[int] = []

        def take(ids: Iterable[int]) -> bool:
            for i in ids:
                if i not in taken:
                    taken.add(i)
                    out.append(i)
                    if len(out) >= limit:
                        return True
            return False

        # 1. exact code, 2. code prefix
        exact = self._by_code.get(qc)
        if exact is not None and take([exact]):
            return self._codes_of(out)
        if take(sorted(self._code_prefix.starting_with(qc))):
            return self._codes_of(out)
        # 3. prefix of a name or key: bisect ranges; only the best `limit` of them are needed.
        ranges: list[int] = []
        names_p, pinyin_p, initials_p, english_p = self._prefixes
        if q.isascii():
            for prefix, query in ((pinyin_p, qc), (initials_p, qc), (english_p, q)):
                ranges.extend(prefix.starting_with(query))
        else:
            ranges.extend(names_p.starting_with(qc))
            ranges.extend(english_p.starting_with(q))
        if ranges and take(heapq.nsmallest(limit + len(taken), set(ranges))):
            return self._codes_of(out)
        # 4. the Chinese name contains it, or a key match starts at a syllable / word.
        names, starts = self._names, self._starts
        sq, sqc = _START + q, _START + qc
        if q.isascii():
            tier = (i for i in candidates
                    if i not in taken and (sqc in starts[i] or sq in starts[i]))
        else:
            tier = (i for i in candidates if i not in taken and qc in names[i])
        if take(tier):
            return self._codes_of(out)
        # 5. any other substring (inside a syllable, inside an English word).
        take(candidates)
        return self._codes_of(out)

    def _codes_of(self, ids: list[int]) -> list[str]:
        return [self.codes[i] for i in ids]
