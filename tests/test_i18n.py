"""bnlib speaks the learner's language: the Japanese catalog covers every message in the source,
the shipped .mo is the compiled .po, translations keep their {fields}, every translated text
renders in the figures' font, and switching back to English restores English."""
import ast
import gettext
import io
import pathlib
import re
import string
import sys
import warnings

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
from babel.messages.pofile import read_po

import bnlib

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import update_catalog  # noqa: E402

PO = ROOT / "bnlib" / "locale" / "ja" / "LC_MESSAGES" / "bnlib.po"
MO = PO.with_suffix(".mo")
SOURCES = sorted((ROOT / "bnlib").rglob("*.py"))


@pytest.fixture(scope="module")
def extracted():
    return update_catalog.extract()


@pytest.fixture(scope="module")
def catalog():
    with open(PO, "rb") as f:
        return read_po(f, locale="ja")


@pytest.fixture(autouse=True)
def english_afterwards():
    yield
    bnlib.set_language("en")


def test_every_message_has_a_japanese_translation(extracted, catalog):
    translated = {m.id: m for m in catalog if m.id}
    missing = [m for m in extracted if m not in translated or not translated[m].string]
    fuzzy = [m.id for m in translated.values() if m.fuzzy]
    assert not missing, (f"{len(missing)} messages have no Japanese translation, e.g. {missing[:5]}; "
                         f"add them (scripts/update_catalog.py --add your.json)")
    assert not fuzzy, f"fuzzy (unchecked) translations: {fuzzy[:5]}"


def test_catalog_holds_no_messages_the_source_dropped(extracted, catalog):
    stale = [m.id for m in catalog if m.id and m.id not in extracted]
    assert not stale, f"messages no longer in the source: {stale[:5]}; run python scripts/update_catalog.py"


def test_shipped_mo_is_the_compiled_po(catalog):
    assert MO.read_bytes() == update_catalog.render_mo(catalog), (
        "bnlib.mo is out of date with bnlib.po; run python scripts/update_catalog.py")


def _fields(text):
    return sorted((name, spec, conversion) for _literal, name, spec, conversion in string.Formatter().parse(text)
                  if name is not None)


def test_translations_keep_every_field(catalog):
    wrong = [(m.id, m.string) for m in catalog if m.id and m.string and _fields(m.id) != _fields(m.string)]
    assert not wrong, f"a translation must use the same {{fields}} as the English: {wrong[:3]}"


def _calls_of_underscore(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("_", "N_"):
            yield node


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_messages_are_plain_literals(path):
    """_() of an f-string or a variable cannot be extracted, so it would never be translated."""
    # _(LABELS[kind]) translates a constant marked with N_("…") where it is shown: allowed
    allowed = {"N_": (ast.Constant,), "_": (ast.Constant, ast.Subscript, ast.Name, ast.Attribute)}
    tree = ast.parse(path.read_text(encoding="utf-8"))
    bad = [node.lineno for node in _calls_of_underscore(tree)
           if len(node.args) != 1 or not isinstance(node.args[0], allowed[node.func.id])]
    assert not bad, f"{path.name}: _() and N_() need one string literal, not an f-string (lines {bad})"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_function_shadows_underscore(path):
    """A function that assigns `_` (as in `_, x = …`) makes `_` local: its _("…") calls then fail."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    bad = []
    for fn in ast.walk(tree):
        if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        body = list(ast.walk(fn))
        assigns = any(isinstance(n, ast.Name) and n.id == "_" and isinstance(n.ctx, ast.Store) for n in body)
        calls = any(True for _ in _calls_of_underscore(fn))
        if assigns and calls:
            bad.append(getattr(fn, "name", "lambda"))
    assert not bad, f"{path.name}: {bad} assign `_` and also call _(); name the unused value differently"


def test_mo_loads_with_gettext(catalog):
    with open(MO, "rb") as f:
        translation = gettext.GNUTranslations(f)
    some = next(m for m in catalog if m.id and m.string)
    assert translation.gettext(some.id) == some.string


def test_switching_language_changes_hints_errors_and_back(capsys):
    bnlib.set_language("ja")
    assert bnlib.get_language() == "ja"
    bnlib.check(1.0, 1.0, "μ")
    ja_line = capsys.readouterr().out
    with pytest.raises(ValueError) as ja_error:
        bnlib.BatchNorm(3, dtype=np.float64).forward(np.ones((1, 3)))
    bnlib.set_language("en")
    bnlib.check(1.0, 1.0, "μ")
    en_line = capsys.readouterr().out
    with pytest.raises(ValueError) as en_error:
        bnlib.BatchNorm(3, dtype=np.float64).forward(np.ones((1, 3)))
    assert en_line == "✓ μ: correct\n"
    assert re.search(r"[ぁ-んァ-ン一-龥]", ja_line) and ja_line != en_line
    assert re.search(r"[ぁ-んァ-ン一-龥]", str(ja_error.value))
    assert "at least 2 samples" in str(en_error.value)


def test_claim_lines_switch_language(capsys):
    bnlib.set_language("ja")
    bnlib.claim(True, "BN が速い", "2.0 倍")
    ja = capsys.readouterr().out
    bnlib.set_language("en")
    bnlib.claim(True, "BN is faster", "2.0×")
    assert capsys.readouterr().out == "✓ BN is faster (2.0×)\n"
    assert ja.startswith("✓ BN が速い") and "2.0 倍" in ja


def test_unknown_language_is_refused():
    with pytest.raises(ValueError, match="unknown language 'fr'.*'en', 'ja'"):
        bnlib.set_language("fr")


def test_japanese_font_only_while_japanese():
    english = list(matplotlib.rcParams["font.family"])
    bnlib.set_language("ja")
    # the English font stays first (numbers and Greek look the same); the Japanese one follows
    assert list(matplotlib.rcParams["font.family"]) == english + ["IPAexGothic"]
    bnlib.set_language("ja")                       # twice: still restores the English font after
    bnlib.set_language("en")
    assert list(matplotlib.rcParams["font.family"]) == english


def _math_ok(text):
    return text.replace(r"\$", "").count("$") % 2 == 0


def test_every_translation_renders_without_missing_glyphs(catalog, caplog):
    """Draw every Japanese message in the figures' font: a glyph the font lacks warns (→ error
    here), and mathtext logs "does not have a glyph" (kana or kanji inside $…$ become boxes)."""
    bnlib.set_language("ja")
    fig, ax = plt.subplots(figsize=(4, 1))
    texts = [m.string for m in catalog if m.id and m.string]
    for text in texts:
        ax.text(0, 0, text, parse_math=_math_ok(text))
    with warnings.catch_warnings(), caplog.at_level("WARNING", logger="matplotlib"):
        warnings.simplefilter("error")
        fig.canvas.draw()
    plt.close(fig)
    boxes = [r.getMessage() for r in caplog.records if "glyph" in r.getMessage()]
    assert not boxes, f"{len(boxes)} characters would be drawn as boxes, e.g. {boxes[0]}"


def test_pad_counts_kana_and_kanji_as_two_columns():
    assert bnlib.i18n.columns("BN あり") == 7
    assert bnlib.i18n.pad("正解率", 8) == "正解率  " and bnlib.i18n.pad("abc", 5, ">") == "  abc"
    assert bnlib.i18n.pad("長すぎる見出し", 4) == "長すぎる見出し"        # never cut
