"""A binary diff for update patches that takes seconds, not minutes (issue 13: publish ~2 min).

tufup makes a patch between the two *uncompressed* tar archives of consecutive versions (~85 MB
for the desk) with bsdiff4, whose suffix sort over the whole archive is most of a publish
(bench/bench_updates.py). A new release changes a few members (our code inside the executable,
a data file) and leaves the bundled libraries byte-identical, and tar puts every member at a
512-byte boundary. So:

1. the old archive is indexed by a hash of each 512-byte block; each block of the new archive
   that is found there starts a COPY run, extended block by block while the bytes agree;
2. what is left (the new archive's unmatched blocks, in order) is diffed with bsdiff4 against
   what is left of the old one (its blocks no COPY used, in order): two small inputs, so the
   compact bsdiff patch of a changed executable costs seconds.

The patch is `MAGIC`, the op list and the bsdiff4 patch; `patch()` redoes step 2's "left of the
old one" from the ops, applies bsdiff4 and reassembles. tufup checks the size and SHA-256 of the
result against the signed metadata, so a wrong patch can only fail, never install. A desk from
before this format fails that patch once (bsdiff4 refuses the magic), marks it failed and takes
the full archive on its next check (tufup's own fallback).
"""

from __future__ import annotations

import hashlib
import struct

import bsdiff4  # type: ignore[import-untyped]
from tufup.common import BinaryDiff  # type: ignore[import-untyped]

MAGIC = b"CTBD1\n"
BLOCK = 512  # tar's record alignment
_OP = struct.Struct("<BQQ")  # kind (0 copy, 1 literal), offset in old (copy), length
COPY, LITERAL = 0, 1


class PatchFormatError(ValueError):
    """The bytes are not a patch of this format (or are damaged)."""


def _key(block: bytes) -> bytes:
    return hashlib.blake2b(block, digest_size=12).digest()


def _ops(src: bytes, dst: bytes) -> list[tuple[int, int, int]]:
    index: dict[bytes, int] = {}
    for off in range(0, len(src) - BLOCK + 1, BLOCK):
        index.setdefault(_key(src[off:off + BLOCK]), off)
    ops: list[tuple[int, int, int]] = []
    pos = 0
    lit_start = 0
    n = len(dst)
    while pos + BLOCK <= n:
        found = index.get(_key(dst[pos:pos + BLOCK]))
        if found is None or src[found:found + BLOCK] != dst[pos:pos + BLOCK]:
            pos += BLOCK
            continue
        if pos > lit_start:
            ops.append((LITERAL, 0, pos - lit_start))
        length = BLOCK
        # Extend in big steps first (most matches are whole libraries), then block by block.
        for step in (1 << 20, 1 << 14, BLOCK):
            while (pos + length + step <= n and found + length + step <= len(src)
                   and src[found + length:found + length + step]
                   == dst[pos + length:pos + length + step]):
                length += step
        ops.append((COPY, found, length))
        pos += length
        lit_start = pos
    if n > lit_start:
        ops.append((LITERAL, 0, n - lit_start))
    return ops


def _leftover(src: bytes, ops: list[tuple[int, int, int]]) -> bytes:
    """The old archive's bytes no COPY op used, in order (the bsdiff base)."""
    used = sorted((off, off + length) for kind, off, length in ops if kind == COPY)
    parts: list[bytes] = []
    cursor = 0
    for start, end in used:
        if start > cursor:
            parts.append(src[cursor:start])
        cursor = max(cursor, end)
    parts.append(src[cursor:])
    return b"".join(parts)


def diff(*, src_bytes: bytes, dst_bytes: bytes) -> bytes:
    ops = _ops(src_bytes, dst_bytes)
    pos = 0
    lit_parts: list[bytes] = []
    for kind, _off, length in ops:
        if kind == LITERAL:
            lit_parts.append(dst_bytes[pos:pos + length])
        pos += length
    literals = b"".join(lit_parts)
    inner: bytes = bsdiff4.diff(_leftover(src_bytes, ops), literals)
    head = struct.pack("<Q", len(ops)) + b"".join(_OP.pack(*op) for op in ops)
    return MAGIC + head + inner


def patch(*, src_bytes: bytes, patch_bytes: bytes) -> bytes:
    if not patch_bytes.startswith(MAGIC):
        raise PatchFormatError("not a counter-app block patch")
    body = memoryview(patch_bytes)[len(MAGIC):]
    try:
        (count,) = struct.unpack_from("<Q", body, 0)
        ops = [_OP.unpack_from(body, 8 + i * _OP.size) for i in range(count)]
    except struct.error as exc:
        raise PatchFormatError(f"damaged patch header: {exc}") from exc
    for kind, off, length in ops:
        if kind not in (COPY, LITERAL) or (kind == COPY and off + length > len(src_bytes)):
            raise PatchFormatError("damaged patch: an operation points outside the old archive")
    literals: bytes = bsdiff4.patch(_leftover(src_bytes, ops), bytes(body[8 + count * _OP.size:]))
    out: list[bytes] = []
    lit_pos = 0
    for kind, off, length in ops:
        if kind == COPY:
            out.append(src_bytes[off:off + length])
        else:
            out.append(literals[lit_pos:lit_pos + length])
            lit_pos += length
    if lit_pos != len(literals):
        raise PatchFormatError("damaged patch: literal bytes do not add up")
    return b"".join(out)


class TarBlockDiff(BinaryDiff):  # type: ignore[misc]
    """tufup's BinaryDiff interface over `diff`/`patch` above (used by the repository and the
    desk's update client alike)."""

    diff = staticmethod(diff)
    patch = staticmethod(patch)
