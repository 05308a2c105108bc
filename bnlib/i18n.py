"""The learner's language: every string bnlib shows a learner goes through `_`.

    bnlib.set_language("ja")    # figures, sliders, summaries, hints, claims and errors in Japanese
    bnlib.set_language("en")    # back to English (the default)

Messages are looked up in gettext catalogs (bnlib/locale/<lang>/LC_MESSAGES/bnlib.mo), made
from the .po files by `python scripts/update_catalog.py`. Three rules keep them extractable:
- wrap the literal text: `_("test accuracy")`, never `_(f"…")` or `_(variable)` of new text;
- put numbers in with named fields: `_("gap {gap:+.1%}").format(gap=g)`, so a translation can
  move them;
- text fixed at import time (module constants) is marked with `N_` and translated where it is
  shown: `LABELS = {"bn": N_("with BN")}`, then `_(LABELS[kind])`.
"""
import gettext
import unicodedata
from pathlib import Path

import matplotlib

LOCALE_DIR = Path(__file__).parent / "locale"
DOMAIN = "bnlib"
LANGUAGES = ("en", "ja")

_state = {"language": "en", "translation": gettext.NullTranslations(), "font": None}


def _(message):
    """The message in the current language (the English text itself when no translation)."""
    return _state["translation"].gettext(message)


def N_(message):
    """Mark text for the catalog without translating it yet (for module-level constants)."""
    return message


def columns(text):
    """How many columns `text` takes in monospaced output: a kana or kanji counts as two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def pad(text, width, align="<"):
    """`text` padded with spaces to `width` columns, left ("<") or right (">") aligned, so that
    printed tables line up in Japanese too (str.ljust would count a kanji as one column)."""
    fill = " " * max(0, width - columns(text))
    return text + fill if align == "<" else fill + text


def get_language():
    """The current language code: "en" or "ja"."""
    return _state["language"]


def set_language(language):
    """Switch what bnlib shows to "en" (English) or "ja" (日本語).

    Also sets matplotlib's fonts for figures made afterwards: for "ja", the English font followed
    by a bundled Japanese font (IPAexGothic, from the matplotlib-fontja package) for what the
    English font lacks; for "en", the font that was in use before.
    """
    if language not in LANGUAGES:
        raise ValueError(f"unknown language {language!r}; choose one of {', '.join(map(repr, LANGUAGES))}")
    if language == "en":
        translation = gettext.NullTranslations()
    else:
        translation = gettext.translation(DOMAIN, LOCALE_DIR, languages=[language])
    _state.update(language=language, translation=translation)
    _set_font(language)


def _set_font(language):
    if language == "ja":
        if _state["font"] is None:                   # remember the English look, to restore it
            _state["font"] = matplotlib.rcParams["font.family"]
        from matplotlib import font_manager
        import matplotlib_fontja                     # on import it registers IPAexGothic with matplotlib
        name = font_manager.FontProperties(fname=matplotlib_fontja.get_font_ttf_path()).get_name()
        # the English font first, so Latin, Greek, digits and symbols look as in the English
        # edition; matplotlib falls back glyph by glyph to the Japanese font for kana and kanji
        matplotlib.rcParams["font.family"] = list(_state["font"]) + [name]
    elif _state["font"] is not None:
        matplotlib.rcParams["font.family"] = _state["font"]
        _state["font"] = None
