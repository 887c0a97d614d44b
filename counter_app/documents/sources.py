"""Capture sources behind one interface: SANE scanners, TWAIN (Windows), a hot folder, files.

``CaptureSource``: ``name``, ``health() -> HealthResult`` (run before each scan; a clear zh/en
message when the scanner is missing or busy, and the fallback to offer), and
``capture(settings) -> Iterator[Page]``. Pages are yielded one by one so that pages already
delivered are kept by the caller when a batch fails half way (scanner unplugged, paper jam).

* SANE (python-sane): the library is not thread-safe and ``get_devices()`` may take seconds
  probing every backend, so every call holds one module lock and runs on a worker thread.
* TWAIN (pytwain) is Windows-only; imported only when used, and kept tiny (cannot run here).
* Hot folder (watchdog): a file is taken when the writer CLOSES it (inotify IN_CLOSE_WRITE) or
  moves it in, never on create, so a half-written file is never imported. On platforms without
  close events (Windows) a file is taken once its size stopped changing and it can be opened.
* File import: always works; the UI's file dialog feeds it.
"""

from __future__ import annotations

import ctypes
import io
import logging
import os
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from counter_app.documents import DocumentError
from counter_app.documents.page import Page
from counter_app.documents.pdf import DEFAULT_LIMITS, Limits, check_size, validate_bytes

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScanSettings:
    resolution: int = 300
    colour: str = "color"  # "color" | "gray" | "lineart"
    source: str = "flatbed"  # "flatbed" | "adf"
    max_pages: int | None = None  # ADF: stop after this many pages (None: until the feeder is empty)
    jpeg_quality: int = 85


@dataclass(frozen=True)
class HealthResult:
    ok: bool
    message_zh: str
    message_en: str
    fallback: str = ""  # the source to offer instead: "file" | "folder" | ""
    devices: tuple[str, ...] = ()

    def message(self, lang: str) -> str:
        return self.message_en if lang.lower().startswith("en") else self.message_zh


class CaptureError(DocumentError):
    """A capture stopped; pages yielded before it are kept by the caller."""


class CaptureSource(Protocol):
    name: str

    def health(self) -> HealthResult: ...

    def capture(self, settings: ScanSettings) -> Iterator[Page]: ...


FALLBACK_ZH = "可改用“导入文件”或热文件夹继续。"
FALLBACK_EN = "Use 'Import file' or the hot folder instead."


# ---- SANE ------------------------------------------------------------------------------------
_SANE_LOCK = threading.RLock()
_sane_ready = False

_SANE_STATUS_ZH = {
    "Document feeder jammed": "进纸器卡纸",
    "Document feeder out of documents": "进纸器中没有纸",
    "Scanner cover is open": "扫描仪盖板打开",
    "Device busy": "扫描仪正忙（可能被其他程序占用）",
    "Error during device I/O": "扫描仪读写错误（可能已断开）",
    "Access to resource has been denied": "无权访问扫描仪",
    "Out of memory": "内存不足",
    "Invalid argument": "扫描参数无效",
    "Operation was cancelled": "扫描已取消",
}


def _sane() -> Any:
    global _sane_ready
    import sane  # python-sane; imported lazily so the desk starts without libsane

    with _SANE_LOCK:
        if not _sane_ready:
            sane.init()
            _sane_ready = True
    return sane


def sane_devices() -> list[tuple[str, str]]:
    """(device name, description) of every SANE device. Slow (probes backends): worker only."""
    with _SANE_LOCK:
        sane = _sane()
        return [(d[0], f"{d[1]} {d[2]} ({d[3]})") for d in sane.get_devices()]


def _sane_error(exc: BaseException, done: int) -> CaptureError:
    text = str(exc)
    zh = _SANE_STATUS_ZH.get(text, text)
    kept_zh = f"已采集的 {done} 页已保留。" if done else ""
    kept_en = f"The {done} page(s) already captured are kept. " if done else ""
    return CaptureError(message_zh=f"扫描中断：{zh}。{kept_zh}{FALLBACK_ZH}",
                        message_en=f"Scanning stopped: {text}. {kept_en}{FALLBACK_EN}",
                        code="scan_failed", details={"pages_done": done, "sane": text})


class SaneSource:
    """A SANE scanner (flatbed or ADF). ``device`` e.g. ``"test:1"`` or ``"fujitsu:fi-7160:…"``."""

    def __init__(self, device: str) -> None:
        self.device = device
        self.name = f"sane:{device}"

    def health(self) -> HealthResult:
        try:
            with _SANE_LOCK:
                names = [d for d, _ in sane_devices()]
                if self.device not in names:
                    return HealthResult(
                        False, f"未找到扫描仪 {self.device}（未连接或未开机）。{FALLBACK_ZH}",
                        f"Scanner {self.device} not found (unplugged or switched off). "
                        f"{FALLBACK_EN}", "file", tuple(names))
                dev = _sane().open(self.device)
                dev.close()
        except ImportError:
            return HealthResult(False, f"本机未安装 SANE 扫描驱动。{FALLBACK_ZH}",
                                f"SANE is not installed on this PC. {FALLBACK_EN}", "file")
        except Exception as exc:  # _sane.error: busy, access denied, I/O
            text = str(exc)
            return HealthResult(False, f"扫描仪不可用：{_SANE_STATUS_ZH.get(text, text)}。{FALLBACK_ZH}",
                                f"The scanner is not available: {text}. {FALLBACK_EN}", "file")
        return HealthResult(True, "扫描仪就绪。", "Scanner ready.", devices=tuple(names))

    def _configure(self, dev: Any, settings: ScanSettings) -> None:
        opts = {o[1]: o for o in dev.get_options()}

        def choose(option: str, wanted: Iterable[str]) -> None:
            if option not in opts or not isinstance(opts[option][8], list):
                return
            allowed = [str(v) for v in opts[option][8]]
            for w in wanted:
                for a in allowed:
                    if a.lower() == w.lower() or w.lower() in a.lower():
                        setattr(dev, option, a)
                        return

        mode = {"color": ("Color",), "gray": ("Gray",), "lineart": ("Lineart", "Binary", "Gray")}
        choose("mode", mode.get(settings.colour, ("Color",)))
        if settings.source == "adf":
            choose("source", ("ADF", "Automatic Document Feeder", "Feeder", "ADF Front"))
        else:
            choose("source", ("Flatbed",))
        if "resolution" in opts:
            try:
                dev.resolution = int(settings.resolution)
            except Exception:  # noqa: BLE001 - a device may offer only a list; keep its default
                log.info("scanner refused resolution %s", settings.resolution)

    def _page_done(self, dev: Any, done: int) -> None:
        """Called after each page with the open device (subclasses: per-page options, tests)."""

    def capture(self, settings: ScanSettings) -> Iterator[Page]:
        done = 0
        with _SANE_LOCK:
            try:
                dev = _sane().open(self.device)
            except Exception as exc:
                raise _sane_error(exc, 0) from exc
            try:
                self._configure(dev, settings)
                if settings.source == "adf":
                    images: Iterator[Any] = dev.multi_scan()
                else:
                    images = iter([dev.scan()])
                while settings.max_pages is None or done < settings.max_pages:
                    try:
                        image = next(images)
                    except StopIteration:
                        break
                    except Exception as exc:
                        if done and "out of documents" in str(exc).lower():
                            break  # the feeder ran empty: the batch is simply over
                        raise _sane_error(exc, done) from exc
                    _ignore_sigpipe_again()
                    page = encode_scan(image, settings)
                    done += 1
                    self._page_done(dev, done)
                    yield page
                if done == 0:
                    raise CaptureError(message_zh="进纸器中没有纸，未扫描到页面。",
                                       message_en="The feeder is empty; no page was scanned.",
                                       code="no_pages")
            finally:
                try:
                    dev.close()
                except Exception:  # noqa: BLE001
                    log.debug("closing the SANE device failed", exc_info=True)
                _ignore_sigpipe_again()


def _ignore_sigpipe_again() -> None:
    """Put SIGPIPE back to "ignore" after a SANE scan (any thread).

    libsane's reader (seen with its test backend) sets SIGPIPE to the default action, which
    kills the whole desk the next time any pipe closes under a write (a browser, a helper
    process): Python relies on SIGPIPE being ignored and turns it into BrokenPipeError. The
    disposition is process-wide, so libc's signal() is called directly: Python's
    signal.signal() may only be used on the main thread, and scans run on workers.
    """
    if sys.platform == "win32":
        return
    try:
        libc = ctypes.CDLL(None)
        libc.signal.restype = ctypes.c_void_p
        libc.signal.argtypes = (ctypes.c_int, ctypes.c_void_p)
        libc.signal(int(signal.SIGPIPE), 1)  # 1 == SIG_IGN
    except (OSError, AttributeError):
        log.warning("could not restore SIGPIPE to ignored after a scan", exc_info=True)


def encode_scan(image: Any, settings: ScanSettings) -> Page:
    """Encode a scanned PIL image once (JPEG for colour/gray, PNG for line art), with its DPI."""
    buf = io.BytesIO()
    dpi = (settings.resolution, settings.resolution)
    if image.mode == "1" or settings.colour == "lineart":
        image.save(buf, "PNG", dpi=dpi, optimize=False)
        mime = "image/png"
    else:
        if image.mode not in ("RGB", "L"):
            image = image.convert("RGB")
        image.save(buf, "JPEG", quality=settings.jpeg_quality, dpi=dpi, optimize=False)
        mime = "image/jpeg"
    return Page(buf.getvalue(), mime, "", image.size[0], image.size[1])


# ---- TWAIN (Windows only; cannot be run on this Linux build machine) -------------------------
class TwainSource:
    """A TWAIN data source through pytwain. Import-guarded: on other platforms health() says so.

    Untested here (TWAIN needs Windows and a driver); kept to the documented pytwain calls.
    """

    def __init__(self, source_name: str | None = None, parent_window: Any = None) -> None:
        self.source_name = source_name
        self.parent_window = parent_window
        self.name = f"twain:{source_name or 'default'}"

    def health(self) -> HealthResult:
        if sys.platform != "win32":
            return HealthResult(False, f"TWAIN 仅在 Windows 上可用。{FALLBACK_ZH}",
                                f"TWAIN is available on Windows only. {FALLBACK_EN}", "file")
        try:
            import twain  # type: ignore[import-not-found,unused-ignore]

            with twain.SourceManager(self.parent_window) as sm:
                names = tuple(sm.source_list)
        except Exception as exc:  # noqa: BLE001 - pytwain missing or the DSM failed
            return HealthResult(False, f"TWAIN 扫描仪不可用：{exc}。{FALLBACK_ZH}",
                                f"The TWAIN scanner is not available: {exc}. {FALLBACK_EN}", "file")
        if self.source_name and self.source_name not in names:
            return HealthResult(False, f"未找到扫描仪 {self.source_name}。{FALLBACK_ZH}",
                                f"Scanner {self.source_name} not found. {FALLBACK_EN}", "file", names)
        return HealthResult(True, "扫描仪就绪。", "Scanner ready.", devices=names)

    def capture(self, settings: ScanSettings) -> Iterator[Page]:
        import twain  # type: ignore[import-not-found,unused-ignore]
        from PIL import Image

        with twain.SourceManager(self.parent_window) as sm:
            src = sm.open_source(self.source_name)
            try:
                src.set_capability(twain.ICAP_XRESOLUTION, twain.TWTY_FIX32, float(settings.resolution))
                src.set_capability(twain.ICAP_YRESOLUTION, twain.TWTY_FIX32, float(settings.resolution))
                src.request_acquire(0, 0)  # no driver UI, no modal loop
                more = 1
                while more:
                    handle, more = src.xfer_image_natively()
                    try:
                        bmp = twain.dib_to_bm_file(handle)
                    finally:
                        twain.global_handle_free(handle)
                    with Image.open(io.BytesIO(bmp)) as im:
                        im.load()
                        yield encode_scan(im, settings)
            finally:
                src.close()


# ---- files -----------------------------------------------------------------------------------
def read_page(path: Path, limits: Limits = DEFAULT_LIMITS) -> Page:
    """Read and validate one file as a page (size checked before reading)."""
    name = path.name
    try:
        check_size(path.stat().st_size, name, limits)
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise CaptureError(message_zh=f"文件“{name}”不存在或已被移走。", message_en=f"The file '{name}' is gone.",
                           code="missing") from exc
    except PermissionError as exc:
        raise CaptureError(message_zh=f"无权读取文件“{name}”。", message_en=f"No permission to read '{name}'.",
                           code="permission") from exc
    info = validate_bytes(data, name, limits)
    return Page(data, info.mime, name, info.width, info.height)


class FileImportSource:
    """Pages from files chosen in the file dialog: the fallback that always works."""

    name = "file"

    def __init__(self, paths: Iterable[Path | str], limits: Limits = DEFAULT_LIMITS) -> None:
        self.paths = [Path(p) for p in paths]
        self.limits = limits

    def health(self) -> HealthResult:
        return HealthResult(True, "可导入文件。", "Files can be imported.")

    def capture(self, settings: ScanSettings) -> Iterator[Page]:
        for path in self.paths:
            try:
                yield read_page(path, self.limits)
            except DocumentError as exc:
                yield Page(b"", "", str(path), refused=exc)


# ---- hot folder ------------------------------------------------------------------------------
IGNORED_SUFFIXES = (".tmp", ".part", ".crdownload", ".partial", "~")


def _wanted(path: Path) -> bool:
    return not path.name.startswith(".") and not path.name.lower().endswith(IGNORED_SUFFIXES)


@dataclass
class _Settle:
    size: int
    since: float


class HotFolderWatcher:
    """Watches a folder (watchdog) and reports each COMPLETE file once through ``on_file``.

    Linux/inotify: on close-after-write or a move into the folder; never on create. Elsewhere
    (no close events): a file whose size has not changed for ``settle_s`` and can be opened.
    ``on_file`` runs on watchdog's thread.
    """

    def __init__(self, folder: Path | str, on_file: Callable[[Path], None], *,
                 settle_s: float = 1.0, use_close_events: bool | None = None) -> None:
        self.folder = Path(folder)
        self.on_file = on_file
        self.settle_s = settle_s
        self.use_close_events = sys.platform.startswith("linux") if use_close_events is None \
            else use_close_events
        self._observer: Any = None
        self._seen: dict[Path, tuple[int, int]] = {}
        self._settling: dict[Path, _Settle] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None

    def _report(self, path: Path) -> None:
        if not _wanted(path) or path.parent != self.folder:
            return
        try:
            st = path.stat()
        except OSError:
            return
        key = (st.st_size, st.st_mtime_ns)
        with self._lock:
            if self._seen.get(path) == key:
                return  # a second close without a new write (e.g. a reader) is not a new file
            self._seen[path] = key
        self.on_file(path)

    def forget(self, path: Path) -> None:
        with self._lock:
            self._seen.pop(path, None)

    def start(self) -> None:
        from watchdog.events import (
            FileClosedEvent,
            FileCreatedEvent,
            FileModifiedEvent,
            FileMovedEvent,
            FileSystemEventHandler,
        )
        from watchdog.observers import Observer

        watcher = self

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event: Any) -> None:
                if event.is_directory:
                    return
                if isinstance(event, FileMovedEvent):
                    if event.dest_path:  # "" when moved OUT of the folder
                        watcher._report(Path(os.fsdecode(event.dest_path)))
                elif isinstance(event, FileClosedEvent) and watcher.use_close_events:
                    watcher._report(Path(os.fsdecode(event.src_path)))
                elif isinstance(event, FileCreatedEvent | FileModifiedEvent) \
                        and not watcher.use_close_events:
                    watcher._touch(Path(os.fsdecode(event.src_path)))

        self.folder.mkdir(parents=True, exist_ok=True)
        if sys.platform.startswith("linux"):
            from watchdog.observers.inotify import InotifyObserver

            # Full events: a file moved in from OUTSIDE the folder is a move (complete file),
            # not reported as a "create" (which, for a writer, means "just opened").
            self._observer = InotifyObserver(generate_full_events=True)
        else:
            self._observer = Observer()
        self._observer.schedule(Handler(), str(self.folder), recursive=False)
        self._observer.start()
        if not self.use_close_events:
            self._stop.clear()
            self._poller = threading.Thread(target=self._settle_loop, name="hotfolder-settle",
                                            daemon=True)
            self._poller.start()

    def _touch(self, path: Path) -> None:
        try:
            size = path.stat().st_size
        except OSError:
            return
        with self._lock:
            self._settling[path] = _Settle(size, time.monotonic())

    def _settle_loop(self) -> None:
        while not self._stop.wait(0.2):
            now = time.monotonic()
            with self._lock:
                items = list(self._settling.items())
            for path, st in items:
                try:
                    size = path.stat().st_size
                except OSError:
                    with self._lock:
                        self._settling.pop(path, None)
                    continue
                if size != st.size:
                    with self._lock:
                        self._settling[path] = _Settle(size, now)
                elif now - st.since >= self.settle_s and size > 0:
                    try:  # a writer holding the file open exclusively (Windows) makes this fail
                        with open(path, "rb"):
                            pass
                    except OSError:
                        continue
                    with self._lock:
                        self._settling.pop(path, None)
                    self._report(path)

    def stop(self) -> None:
        self._stop.set()
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(5)
            self._observer = None
        if self._poller is not None:
            self._poller.join(5)
            self._poller = None


@dataclass
class HotFolderSource:
    """The scanner's output folder: files that arrived (complete) are the pages to take.

    ``start()`` begins watching; ``capture()`` yields the files that arrived since, oldest first,
    without blocking. ``pending()`` tells the UI how many wait.
    """

    folder: Path
    limits: Limits = DEFAULT_LIMITS
    name: str = "folder"
    _arrived: queue.SimpleQueue[Path] = field(default_factory=queue.SimpleQueue)
    _watcher: HotFolderWatcher | None = None
    on_arrival: Callable[[Path], None] | None = None

    def start(self) -> None:
        if self._watcher is None:
            self._watcher = HotFolderWatcher(self.folder, self._arrive)
            self._watcher.start()

    def stop(self) -> None:
        if self._watcher is not None:
            self._watcher.stop()
            self._watcher = None

    def _arrive(self, path: Path) -> None:
        self._arrived.put(path)
        if self.on_arrival is not None:
            self.on_arrival(path)

    def pending(self) -> int:
        return self._arrived.qsize()

    def health(self) -> HealthResult:
        # The clerk is told what to do; the path (for IT) goes to the log only.
        if not self.folder.is_dir():
            log.warning("hot folder %s does not exist", self.folder)
            return HealthResult(False, f"本机的扫描文件夹不存在，请联系信息技术人员。{FALLBACK_ZH}",
                                f"This PC's scan folder does not exist; please call IT. {FALLBACK_EN}", "file")
        if not os.access(self.folder, os.R_OK | os.W_OK):
            log.warning("no read/write permission on the hot folder %s", self.folder)
            return HealthResult(False, f"无权读写本机的扫描文件夹，请联系信息技术人员。{FALLBACK_ZH}",
                                f"No permission on this PC's scan folder; please call IT. {FALLBACK_EN}", "file")
        return HealthResult(True, "热文件夹就绪。", "Hot folder ready.")

    def capture(self, settings: ScanSettings) -> Iterator[Page]:
        while True:
            try:
                path = self._arrived.get_nowait()
            except queue.Empty:
                return
            if not path.exists():
                continue
            try:
                page = read_page(path, self.limits)
            except DocumentError as exc:
                yield Page(b"", "", str(path), refused=exc)
                continue
            yield Page(page.data, page.mime, str(path), page.width, page.height)

    def imported(self, page: Page) -> None:
        """The page is stored (encrypted): remove its plaintext file from the hot folder."""
        path = Path(page.name)
        if path.parent == self.folder:
            try:
                path.unlink()
            except FileNotFoundError:
                pass
            if self._watcher is not None:
                self._watcher.forget(path)
