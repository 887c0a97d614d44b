"""`Page`, one captured page: a leaf module so that the capture sources (`sources`) and the PDF
assembly (`pdf`) can both name it without importing each other (that was a cycle)."""

from __future__ import annotations

from dataclasses import dataclass

from counter_app.documents import DocumentError


@dataclass(frozen=True)
class Page:
    """One captured page: encoded bytes (JPEG/PNG/TIFF, or a whole PDF) and its MIME type."""

    data: bytes
    mime: str
    name: str = ""
    width: int = 0
    height: int = 0
    #: A file source yields a refused file this way (instead of raising, which would end the
    #: generator) so one bad file in a batch does not stop the good ones after it.
    refused: DocumentError | None = None
