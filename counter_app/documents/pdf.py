"""Validation of captured files, thumbnails, and the one-PDF-per-checklist-item assembly.

* Validation trusts bytes, never names: only JPEG, PNG, TIFF and PDF pass the magic-byte check
  (a program renamed ``.jpg`` is refused and named as a program); empty, oversized (configurable)
  and undecodable files get a clear zh/en message.
* JPEG pages go into the PDF untouched (img2pdf embeds the DCT stream: no re-encoding, no
  generation loss, about 1 ms a page). PNG and TIFF are embedded losslessly by img2pdf; only a
  PNG with transparency is flattened first (PDF images have no alpha). Imported PDF pages are
  appended with pikepdf (a dependency of img2pdf).
* Thumbnails use Pillow's ``draft()`` for JPEG, so a 300 dpi A4 page is decoded at 1/8 scale.

All of this decodes images: worker threads only, never the Tk thread.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

import img2pdf
from PIL import Image, UnidentifiedImageError

from counter_app.documents import DocumentError
from counter_app.documents.page import Page

MIME_JPEG = "image/jpeg"
MIME_PNG = "image/png"
MIME_TIFF = "image/tiff"
MIME_PDF = "application/pdf"
ALLOWED = (MIME_JPEG, MIME_PNG, MIME_TIFF, MIME_PDF)
THUMB_SIZE = (150, 210)


@dataclass(frozen=True)
class Limits:
    """Configurable limits; the defaults fit the reference server's 50 MB upload limit."""

    max_file_bytes: int = 50 * 1024 * 1024
    max_document_bytes: int = 50 * 1024 * 1024
    max_pages: int = 100
    max_pixels: int = 12_000 * 12_000  # beyond Pillow's bomb limit we refuse, not warn
    min_dpi: int = 100
    max_dpi: int = 1200


DEFAULT_LIMITS = Limits()


class ValidationError(DocumentError):
    """A file that is not a usable page; nothing was stored from it."""


def sniff(head: bytes) -> str | None:
    """The MIME type by magic bytes (JPEG/PNG/TIFF/PDF), else None."""
    if head.startswith(b"\xff\xd8\xff"):
        return MIME_JPEG
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return MIME_PNG
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return MIME_TIFF
    if head.startswith(b"%PDF-"):
        return MIME_PDF
    return None


def _program_kind(head: bytes) -> str | None:
    if head.startswith(b"MZ"):
        return "Windows program (MZ)"
    if head.startswith(b"\x7fELF"):
        return "Linux program (ELF)"
    if head.startswith(b"#!"):
        return "script"
    if head.startswith((b"PK\x03\x04",)):
        return "ZIP archive"
    return None


def check_size(size: int, name: str, limits: Limits = DEFAULT_LIMITS) -> None:
    """Refuse empty and oversized files before reading them into memory."""
    if size <= 0:
        raise ValidationError(message_zh=f"文件“{name}”是空的（0 字节），未导入。",
                              message_en=f"The file '{name}' is empty (0 bytes); not imported.", code="empty")
    if size > limits.max_file_bytes:
        mb, lim = size / 1048576, limits.max_file_bytes / 1048576
        raise ValidationError(
            message_zh=f"文件“{name}”太大（{mb:.0f} MB，上限 {lim:.0f} MB），未导入。请降低扫描分辨率后重扫。",
            message_en=f"The file '{name}' is too large ({mb:.0f} MB, limit {lim:.0f} MB); not imported. "
            "Rescan at a lower resolution.", code="too_large",
            details={"size": size, "limit": limits.max_file_bytes})


@dataclass(frozen=True)
class PageInfo:
    mime: str
    width: int
    height: int
    pages: int = 1


def validate_bytes(data: bytes, name: str, limits: Limits = DEFAULT_LIMITS) -> PageInfo:
    """Check one captured/imported file completely; raises ValidationError with zh/en text."""
    check_size(len(data), name, limits)
    mime = sniff(data[:16])
    if mime is None:
        prog = _program_kind(data[:8])
        if prog is not None:
            raise ValidationError(
                message_zh=f"文件“{name}”不是图片，而是{_ZH_KIND.get(prog, prog)}（仅接受 JPEG/PNG/TIFF/PDF），已拒绝。",
                message_en=f"The file '{name}' is not an image but a {prog} (only JPEG/PNG/TIFF/PDF are "
                "accepted); refused.", code="not_an_image")
        raise ValidationError(
            message_zh=f"文件“{name}”不是支持的格式（仅接受 JPEG/PNG/TIFF/PDF），未导入。",
            message_en=f"The file '{name}' is not a supported format (only JPEG/PNG/TIFF/PDF); not imported.",
            code="unsupported_type")
    if mime == MIME_PDF:
        return _validate_pdf(data, name, limits)
    try:
        with Image.open(io.BytesIO(data)) as im:
            width, height = im.size
            if width * height > limits.max_pixels:
                raise ValidationError(
                    message_zh=f"图片“{name}”像素过多（{width}×{height}），未导入。",
                    message_en=f"The image '{name}' has too many pixels ({width}x{height}); not imported.",
                    code="too_many_pixels")
            if im.format == "JPEG":
                im.draft("RGB", (max(1, width // 8), max(1, height // 8)))
            # Decoding everything (at draft scale for JPEG) is what finds a truncated or corrupt
            # file; verify() alone does not look at JPEG scan data.
            im.load()
    except ValidationError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise ValidationError(
            message_zh=f"图片“{name}”已损坏或不完整，无法打开，未导入。请重新扫描。",
            message_en=f"The image '{name}' is damaged or incomplete and cannot be opened; not imported. "
            "Please scan it again.", code="corrupt", details={"error": str(exc)[:200]}) from exc
    return PageInfo(mime, width, height)


_ZH_KIND = {"Windows program (MZ)": "Windows 程序（MZ）", "Linux program (ELF)": "Linux 程序（ELF）",
            "script": "脚本", "ZIP archive": "压缩包"}


def _validate_pdf(data: bytes, name: str, limits: Limits) -> PageInfo:
    import pikepdf

    try:
        with pikepdf.open(io.BytesIO(data)) as pdf:
            n = len(pdf.pages)
    except (pikepdf.PdfError, ValueError, OSError) as exc:
        raise ValidationError(
            message_zh=f"PDF 文件“{name}”已损坏，无法打开，未导入。",
            message_en=f"The PDF '{name}' is damaged and cannot be opened; not imported.",
            code="corrupt", details={"error": str(exc)[:200]}) from exc
    if n == 0 or n > limits.max_pages:
        raise ValidationError(
            message_zh=f"PDF 文件“{name}”页数不合适（{n} 页），未导入。",
            message_en=f"The PDF '{name}' has an unusable number of pages ({n}); not imported.",
            code="bad_page_count")
    return PageInfo(MIME_PDF, 0, 0, n)


def thumbnail(data: bytes, mime: str, size: tuple[int, int] = THUMB_SIZE) -> Image.Image:
    """A small RGB image for the panel (worker thread). JPEG uses draft() so decoding is cheap."""
    if mime == MIME_PDF:
        return _pdf_placeholder(size)
    with Image.open(io.BytesIO(data)) as im:
        if im.format == "JPEG":
            im.draft("RGB", size)
        im.thumbnail(size)
        out = im.convert("RGB")
    out.load()
    return out


def _pdf_placeholder(size: tuple[int, int]) -> Image.Image:
    from PIL import ImageDraw

    im = Image.new("RGB", size, (245, 245, 245))
    d = ImageDraw.Draw(im)
    d.rectangle((0, 0, size[0] - 1, size[1] - 1), outline=(160, 160, 160))
    d.text((size[0] // 2 - 12, size[1] // 2 - 6), "PDF", fill=(180, 30, 30))
    return im


def _embeddable(data: bytes, mime: str) -> bytes:
    """Bytes img2pdf can embed. Only alpha/odd PNGs are flattened (losslessly, as PNG)."""
    if mime != MIME_PNG:
        return data
    with Image.open(io.BytesIO(data)) as im:
        if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info) \
                or im.info.get("interlace"):
            flat = Image.new("RGB", im.size, (255, 255, 255))
            rgba = im.convert("RGBA")
            flat.paste(rgba, mask=rgba.getchannel("A"))
            buf = io.BytesIO()
            flat.save(buf, "PNG", dpi=im.info.get("dpi", (300, 300)))
            return buf.getvalue()
    return data


def assemble(pages: Sequence[Page], limits: Limits = DEFAULT_LIMITS) -> bytes:
    """One PDF from the pages in order. JPEG pages are embedded as they are (no re-encode)."""
    if not pages:
        raise ValidationError(message_zh="没有页面，无法生成 PDF。", message_en="There are no pages to make a PDF from.",
                              code="no_pages")
    if len(pages) > limits.max_pages:
        raise ValidationError(
            message_zh=f"页数过多（{len(pages)}，上限 {limits.max_pages}）。",
            message_en=f"Too many pages ({len(pages)}, limit {limits.max_pages}).", code="too_many_pages")
    # Runs of images become one img2pdf document each; PDF pages are spliced in between.
    parts: list[bytes] = []
    run: list[bytes] = []
    for page in pages:
        if page.mime == MIME_PDF:
            if run:
                parts.append(_images_to_pdf(run))
                run = []
            parts.append(page.data)
        else:
            run.append(_embeddable(page.data, page.mime))
    if run:
        parts.append(_images_to_pdf(run))
    out = parts[0] if len(parts) == 1 else _merge(parts)
    if len(out) > limits.max_document_bytes:
        mb, lim = len(out) / 1048576, limits.max_document_bytes / 1048576
        raise ValidationError(
            message_zh=f"生成的 PDF 太大（{mb:.1f} MB，上限 {lim:.0f} MB）。请删去多余页面或降低分辨率重扫。",
            message_en=f"The PDF is too large ({mb:.1f} MB, limit {lim:.0f} MB). Remove pages or rescan "
            "at a lower resolution.", code="too_large")
    return out


def _images_to_pdf(images: list[bytes]) -> bytes:
    try:
        result = img2pdf.convert(images, rotation=img2pdf.Rotation.ifvalid)
    except (img2pdf.ImageOpenError, img2pdf.AlphaChannelError, ValueError, OSError) as exc:
        raise ValidationError(message_zh="页面无法放入 PDF（图片格式异常）。",
                              message_en="A page could not be put into the PDF (unusual image format).",
                              code="pdf_failed", details={"error": str(exc)[:200]}) from exc
    assert isinstance(result, bytes)
    return result


def _merge(parts: list[bytes]) -> bytes:
    import pikepdf

    out = pikepdf.new()
    sources = [pikepdf.open(io.BytesIO(p)) for p in parts]
    try:
        for src in sources:
            out.pages.extend(src.pages)
        buf = io.BytesIO()
        out.save(buf)
        return buf.getvalue()
    finally:
        for src in sources:
            src.close()
        out.close()


def pdf_page_count(data: bytes) -> int:
    import pikepdf

    with pikepdf.open(io.BytesIO(data)) as pdf:
        return len(pdf.pages)
