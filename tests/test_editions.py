"""Two editions, one lesson: every notebook has a Japanese twin in notebooks/ja/ whose Python is the
English notebook's, token for token — string literals, comments and one bnlib.set_language("ja")
in the first code cell aside. A change to one edition that forgets the other fails here."""
import io
import json
import pathlib
import re
import tokenize

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
JA = NOTEBOOKS / "ja"
ENGLISH = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")) + sorted((NOTEBOOKS / "solutions").glob("[0-9][0-9]_*.ipynb"))
JAPANESE = sorted(JA.glob("[0-9][0-9]_*.ipynb")) + sorted((JA / "solutions").glob("[0-9][0-9]_*.ipynb"))
SET_JA = re.compile(r"^bnlib\.set_language\(\s*(['\"])ja\1\s*\)\s*$", re.M)
# the token types that carry an f-string's pieces on Python ≥ 3.12 (on 3.11 an f-string is one STRING)
FSTRING_START, FSTRING_END = getattr(tokenize, "FSTRING_START", None), getattr(tokenize, "FSTRING_END", None)
SKIPPED = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER}


def twin(path):
    return JA / path.relative_to(NOTEBOOKS)


def cells(path):
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def code_tokens(source):
    """The code of one cell as tokens: strings as STR (an f-string is one STR), no comments,
    IPython magics (%…, !…) kept as they are."""
    lines = source.splitlines()
    magics = [line.strip() for line in lines if line.lstrip().startswith(("%", "!"))]
    python = "\n".join(line for line in lines if not line.lstrip().startswith(("%", "!")))
    out, depth = list(magics), 0
    for tok in tokenize.generate_tokens(io.StringIO(python + "\n").readline):
        if tok.type == FSTRING_START:
            depth += 1
            if depth == 1:
                out.append("STR")
        elif tok.type == FSTRING_END:
            depth -= 1
        elif depth:
            continue
        elif tok.type == tokenize.STRING:
            out.append("STR")
        elif tok.type not in SKIPPED:
            out.append(tok.string)
    return out


def test_every_notebook_has_a_japanese_twin():
    missing = [str(twin(p).relative_to(ROOT)) for p in ENGLISH if not twin(p).exists()]
    assert not missing, f"no Japanese twin for: {missing} (write both editions together)"


def test_every_japanese_notebook_has_an_english_original():
    orphans = [str(p.relative_to(ROOT)) for p in JAPANESE
               if not (NOTEBOOKS / p.relative_to(JA)).exists()]
    assert not orphans, f"Japanese notebooks without an English original: {orphans}"


@pytest.mark.parametrize("path", ENGLISH, ids=lambda p: str(p.relative_to(NOTEBOOKS)))
def test_twin_has_the_same_cells_and_code(path):
    ja_path = twin(path)
    if not ja_path.exists():
        pytest.fail(f"{ja_path.relative_to(ROOT)} is missing")
    en, ja = cells(path), cells(ja_path)
    assert [c["cell_type"] for c in en] == [c["cell_type"] for c in ja], (
        f"{ja_path.name}: its cells (markdown/code, in order) differ from the English edition's")
    en_code = [c for c in en if c["cell_type"] == "code"]
    ja_code = [c for c in ja if c["cell_type"] == "code"]
    first = "".join(ja_code[0]["source"])
    assert SET_JA.search(first), f'{ja_path.name}: the first code cell must call bnlib.set_language("ja")'
    for i, (a, b) in enumerate(zip(en_code, ja_code)):
        b_source = "".join(b["source"])
        if i == 0:
            b_source = SET_JA.sub("", b_source, count=1)
        ta, tb = code_tokens("".join(a["source"])), code_tokens(b_source)
        if ta != tb:
            at = next(k for k, (x, y) in enumerate(zip(ta + ["<end>"], tb + ["<end>"])) if x != y)
            pytest.fail(f"{ja_path.name}, code cell {i}: the code differs from {path.name} at token {at} "
                        f"({' '.join(ta[max(0, at - 5):at + 5])!r} vs {' '.join(tb[max(0, at - 5):at + 5])!r}); "
                        f"change both editions together")
        hidden = [c.get("metadata", {}).get("jupyter", {}).get("source_hidden", False) for c in (a, b)]
        assert hidden[0] == hidden[1], f"{ja_path.name}, code cell {i}: collapsed in one edition only"


JA_PARTS = {"goals": "このノートブックで学ぶこと", "time": "所要時間", "predict": "予想してみましょう",
            "exercises": "演習", "summary": "まとめ"}


@pytest.mark.parametrize("path", sorted(JA.glob("[0-9][0-9]_*.ipynb")), ids=lambda p: p.name)
def test_japanese_lesson_has_the_parts_every_lesson_needs(path):
    md = "\n".join("".join(c["source"]) for c in cells(path) if c["cell_type"] == "markdown")
    for part, word in JA_PARTS.items():
        if part == "predict" and path.name.startswith("00_"):
            continue
        assert word in md, f"{path.name}: no 「{word}」 ({part})"
    number = int(path.name[:2])
    nxt = sorted(JA.glob(f"{number + 1:02d}_*.ipynb"))
    if nxt:
        assert nxt[0].name in md, f"{path.name}: links to the next notebook {nxt[0].name}"


# A line break inside a Markdown paragraph renders as a space: between two Japanese characters that
# is a stray gap in the middle of a sentence (「学習が 進みます」). Japanese paragraphs are one line.
CJK = re.compile(r"[\u3000-\u30ff\u3400-\u9fff\uff00-\uffef]")
NEW_BLOCK = re.compile(r"\s*([-*+]\s|\d+\.\s|#|\||>|\$\$)")


def soft_breaks_between_japanese(markdown):
    lines = markdown.split("\n")
    return [f"{a[-12:]}⏎{b[:12]}" for a, b in zip(lines, lines[1:])
            if a.strip() and b.strip() and not a.strip().startswith("$$") and not NEW_BLOCK.match(b)
            and CJK.match(a.rstrip()[-1]) and CJK.match(b.lstrip()[0])]


JA_PAGES = JAPANESE + [ROOT / "README.ja.md"] + sorted((ROOT / "docs" / "ja").glob("*.md"))


@pytest.mark.parametrize("path", JA_PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_japanese_paragraphs_have_no_line_breaks(path):
    if path.suffix == ".ipynb":
        markdown = "\n\n".join("".join(c["source"]) for c in cells(path) if c["cell_type"] == "markdown")
    else:
        markdown = path.read_text(encoding="utf-8")
    found = soft_breaks_between_japanese(markdown)
    assert not found, (f"{path.relative_to(ROOT)}: {len(found)} line breaks inside Japanese sentences "
                       f"(rendered as stray spaces), e.g. {found[:3]}; join the lines")
