"""Every message the desk shows goes through the gettext catalogs, in both languages.

Babel's own Python extractor (the one ``pybabel extract`` uses) walks ``ui/`` for ``_()``,
``N_()`` and ``ngettext()`` calls; every message id it finds must have a Chinese translation in
``ui/locale/zh_CN`` and an English one in ``ui/locale/en`` (the compiled ``.mo`` files the desk
loads), and no message id may itself be Chinese: a Chinese id would be shown as is in English
mode. No Tk needed.
"""

from __future__ import annotations

import gettext
import re
from pathlib import Path

import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir

from ui import i18n
from ui.resources import resource_path

UI = Path(__file__).resolve().parents[1] / "ui"
CJK = re.compile(r"[\u3400-\u9fff\uff00-\uffef\u3000-\u303f]")


def _msgids() -> dict[str, str]:
    found: dict[str, str] = {}
    for filename, lineno, message, _comments, _ctx in extract_from_dir(
            str(UI), method_map=[("**.py", "python")], keywords=DEFAULT_KEYWORDS):
        for msgid in message if isinstance(message, tuple) else (message,):
            if msgid:
                found.setdefault(msgid, f"ui/{filename}:{lineno}")
    return found


def _catalog(lang: str) -> gettext.GNUTranslations:
    t = gettext.translation(i18n.DOMAIN, localedir=str(resource_path("locale")),
                            languages=[i18n.LANGUAGES[lang]])
    assert isinstance(t, gettext.GNUTranslations)
    return t


def test_the_extractor_sees_the_desk_and_the_capture_panel() -> None:
    ids = _msgids()
    assert len(ids) > 150
    # Strings of the capture panel (once zh/en pairs in its presenter) are catalog messages now.
    assert "{n} page(s) captured." in ids and "Finish and upload" in ids and "Feeder (ADF)" in ids


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_every_ui_message_is_translated(lang: str) -> None:
    catalog = _catalog(lang)._catalog  # type: ignore[attr-defined]
    missing = [f"{where}: {msgid!r}" for msgid, where in _msgids().items()
               if not catalog.get(msgid)]
    assert missing == [], f"not in the {lang} catalog (run the steps in docs/desk.md)"


def test_no_chinese_text_in_english_mode() -> None:
    chinese_ids = [f"{where}: {msgid!r}" for msgid, where in _msgids().items() if CJK.search(msgid)]
    assert chinese_ids == []
    en = _catalog("en")._catalog  # type: ignore[attr-defined]
    chinese = [f"{k!r} -> {v!r}" for k, v in en.items() if k and CJK.search(str(v))
               and k != "Switch language"]  # the language button names the other language
    assert chinese == []


def test_capture_labels_follow_the_language_switch() -> None:
    from ui.presenters.capture import label

    try:
        i18n.set_language("en")
        assert (label("adf"), label("confirmed"), label("")) == ("Feeder (ADF)", "Uploaded ✓", "Not checked")
        i18n.set_language("zh")
        assert (label("adf"), label("confirmed"), label("")) == ("自动进纸", "已上传 ✓", "未核对")
    finally:
        i18n.set_language("zh")
