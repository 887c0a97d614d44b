"""Translations: gettext catalogs (compiled with Babel) and a run-time language switch.

Message ids are English; ``locale/zh_CN`` translates them and ``locale/en`` is the identity
catalog (kept so translators can fix English wording without touching code). Chinese is the
default. ``set_language`` swaps the active catalog and calls every listener, so open views
re-label themselves without being rebuilt. Plain Python: presenters use it without Tk.

Regenerate after changing strings (see docs/desk.md):
    pybabel extract -o ui/locale/counter.pot ui
    pybabel update -i ui/locale/counter.pot -d ui/locale -D counter
    pybabel compile -d ui/locale -D counter
"""

from __future__ import annotations

import gettext
import logging
import threading
from collections.abc import Callable

from ui.resources import resource_path

DOMAIN = "counter"
LANGUAGES = {"zh": "zh_CN", "en": "en"}
DEFAULT_LANGUAGE = "zh"

log = logging.getLogger(__name__)

_lock = threading.Lock()
_language = DEFAULT_LANGUAGE
_translation: gettext.NullTranslations = gettext.NullTranslations()
_listeners: list[Callable[[str], None]] = []


def _load(lang: str) -> gettext.NullTranslations:
    locale = LANGUAGES.get(lang, LANGUAGES[DEFAULT_LANGUAGE])
    try:
        return gettext.translation(DOMAIN, localedir=str(resource_path("locale")), languages=[locale])
    except OSError:
        # A missing catalog must not stop the desk; the English ids still read correctly.
        log.error("translation catalog for %s missing under %s", locale, resource_path("locale"))
        return gettext.NullTranslations()


def _(message: str) -> str:
    """The message in the current language. Any thread."""
    return _translation.gettext(message)


def N_(message: str) -> str:  # noqa: N802 - the gettext convention for "mark, translate later"
    """Mark a string for extraction without translating it now."""
    return message


def ngettext(singular: str, plural: str, n: int) -> str:
    return _translation.ngettext(singular, plural, n)


def language() -> str:
    """The current language code: "zh" or "en"."""
    return _language


def set_language(lang: str) -> None:
    """Switch the language and tell every listener (call on the Tk thread when views listen)."""
    global _language, _translation
    if lang not in LANGUAGES:
        raise ValueError(f"unsupported language {lang!r}; expected one of {sorted(LANGUAGES)}")
    with _lock:
        _language = lang
        _translation = _load(lang)
        listeners = list(_listeners)
    for listener in listeners:
        listener(lang)


def on_change(listener: Callable[[str], None]) -> Callable[[], None]:
    """Call ``listener(lang)`` after every switch; returns the unsubscribe function."""
    with _lock:
        _listeners.append(listener)

    def unsubscribe() -> None:
        with _lock:
            if listener in _listeners:
                _listeners.remove(listener)

    return unsubscribe


def listener_count() -> int:
    """How many listeners are registered (tests check views unsubscribe when destroyed)."""
    with _lock:
        return len(_listeners)


set_language(DEFAULT_LANGUAGE)
