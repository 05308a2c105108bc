"""Keep bnlib's translation catalogs in step with the source (needs Babel: requirements-test.txt).

    python scripts/update_catalog.py                 # extract _("…") / N_("…") from bnlib/, update
                                                      # every .po (new messages empty, gone ones dropped),
                                                      # compile the .mo files bnlib ships
    python scripts/update_catalog.py --add ja.po     # also take the translations in ja.po (or in a
                                                      # .json file: {"English": "日本語", …})
    python scripts/update_catalog.py --check         # exit 1 if a .po or .mo is out of date

Translations are kept by message: a message whose English text changes needs a new translation
(it is left empty, and tests/test_i18n.py fails until it has one).
"""
import argparse
import datetime
import io
import json
import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "bnlib"
LOCALE_DIR = PACKAGE / "locale"
KEYWORDS = {"_": None, "N_": None}
LANGUAGES = ("ja",)
# fixed, so that the files change only when a message or a translation does
DATE = datetime.datetime(2026, 12, 1, tzinfo=datetime.timezone.utc)


def extract():
    """Every message in bnlib's source: {msgid: [(file, line), …]}."""
    found = {}
    for filename, lineno, message, _comments, _context in extract_from_dir(
            PACKAGE, method_map=[("**.py", "python")], keywords=KEYWORDS, comment_tags=()):
        found.setdefault(message, []).append((f"bnlib/{filename}", lineno))
    return found


def po_path(language):
    return LOCALE_DIR / language / "LC_MESSAGES" / "bnlib.po"


def read(path, language):
    if path.suffix == ".json":
        catalog = Catalog(locale=language, domain="bnlib")
        for msgid, msgstr in json.loads(path.read_text(encoding="utf-8")).items():
            catalog.add(msgid, msgstr)
        return catalog
    if not path.exists():
        return Catalog(locale=language, domain="bnlib")
    with open(path, "rb") as f:
        return read_po(f, locale=language)


def updated(language, messages, extra=()):
    """The catalog for `language` with exactly the extracted messages, translations kept."""
    old = read(po_path(language), language)
    known = {m.id: m.string for m in old if m.id}
    for catalog in extra:
        known.update({m.id: m.string for m in catalog if m.id and m.string})
    new = Catalog(locale=language, domain="bnlib", project="bnlib", version="0.1", charset="utf-8",
                  creation_date=DATE, revision_date=DATE, fuzzy=False,
                  msgid_bugs_address="the project's issue tracker",
                  last_translator="bnlib contributors", language_team="bnlib Japanese edition",
                  header_comment=f"# Japanese messages for bnlib: what a learner reads.\n"
                                 f"# Made by scripts/update_catalog.py; edit msgstr lines only.")
    for msgid in sorted(messages, key=lambda m: messages[m][0]):
        files = sorted({(filename, None) for filename, _line in messages[msgid]})
        new.add(msgid, known.get(msgid, ""), locations=files)
    return new


def render_po(catalog):
    buf = io.BytesIO()
    # no line numbers: editing code must not change the catalog
    write_po(buf, catalog, width=100, sort_output=False, include_previous=False, include_lineno=False)
    return buf.getvalue()


def render_mo(catalog):
    buf = io.BytesIO()
    write_mo(buf, catalog, use_fuzzy=False)
    return buf.getvalue()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--add", action="append", default=[], metavar="PO",
                        help="a .po file whose translations to take in (may repeat)")
    parser.add_argument("--check", action="store_true", help="only report whether files are current")
    args = parser.parse_args()
    messages = extract()
    stale = []
    for language in LANGUAGES:
        extra = [read(Path(p), language) for p in args.add]
        catalog = updated(language, messages, extra)
        po, mo = po_path(language), po_path(language).with_suffix(".mo")
        for path, content in ((po, render_po(catalog)), (mo, render_mo(catalog))):
            if path.exists() and path.read_bytes() == content:
                continue
            if args.check:
                stale.append(path)
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
            print(f"wrote {path.relative_to(ROOT)}")
        missing = [m.id for m in catalog if m.id and not m.string]
        if missing:
            print(f"{language}: {len(missing)} of {len(messages)} messages have no translation yet",
                  file=sys.stderr)
    if stale:
        print("out of date: " + ", ".join(str(p.relative_to(ROOT)) for p in stale)
              + " — run python scripts/update_catalog.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
