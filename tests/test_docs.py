"""The docs point at the notebooks; they never carry their own copies of what a notebook computes.

1. The instructor guides quote a notebook's results only as the notebook's own self-check
   statements (the text given to `bnlib.claim(condition, statement, ...)`), in one markup:

       ✓ “with BN, every learning rate from 0.03 to 10 gives ≥ 80% after 300 steps” (04)
       ✓「…」（04）

   docs/instructor-guide.md quotes notebooks/NN_*.ipynb, docs/ja/instructor-guide.md quotes the
   Japanese twins notebooks/ja/NN_*.ipynb. Every quote must be, verbatim, the statement of a claim in
   that notebook's code, so a changed claim fails here instead of leaving an old figure in a guide.
2. The guides write the batch size N, as the notebooks and the glossary do, never a bare m.
3. Links into the glossary reach an anchor that exists (tests/test_links.py checks that every relative link reaches a file).
"""
import ast
import difflib
import json
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
GLOSSARY = ROOT / "docs" / "glossary.md"
GUIDES = {  # guide → the folder of the notebooks it quotes
    "docs/instructor-guide.md": ROOT / "notebooks",
    "docs/ja/instructor-guide.md": ROOT / "notebooks" / "ja",
}
# ✓ “statement” (NN)  or  ✓「statement」（NN）; a quote stays inside one paragraph.
_BODY = r"(?P<text>(?:(?!\n[ \t]*\n)[^✓])+?)"
_GAP = r"[ \t]*\n?[ \t]*"  # spaces, or one line break
QUOTE = re.compile(r"✓" + _GAP + r"(?:“" + _BODY.replace("text", "en") + r"”" + _GAP + r"\((?P<nb_en>\d\d)\)"
                   r"|「" + _BODY.replace("text", "ja") + r"」" + _GAP + r"（(?P<nb_ja>\d\d)）)")
QUOTE_START = re.compile(r"✓" + _GAP + r"[“「]")


# --------------------------------------------------------------------------- reading
def _read(rel):
    path = ROOT / rel
    return path.read_text(encoding="utf-8") if path.exists() else None


def _line(text, pos):
    return text.count("\n", 0, pos) + 1


def _norm(s):
    return re.sub(r"\s+", " ", s.replace("\\|", "|")).strip()


def quotes(text):
    """[(notebook number, statement, line)] for every self-check quote in a guide."""
    out = []
    for m in QUOTE.finditer(text):
        nb = m.group("nb_en") or m.group("nb_ja")
        body = m.group("en") if m.group("en") is not None else m.group("ja")
        out.append((nb, _norm(body), _line(text, m.start())))
    return out


def notebook(folder, number):
    found = sorted(folder.glob(f"{number}_*.ipynb"))
    return found[0] if found else None


def _code(cell):
    """A code cell's source as Python: IPython magics and shell lines dropped."""
    lines = "".join(cell["source"]).splitlines()
    return "\n".join("" if l.lstrip().startswith(("%", "!")) else l for l in lines)


def _statement(node):
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):  # f-string: its template, {expression} for each field
        return "".join(v.value if isinstance(v, ast.Constant) else "{" + ast.unparse(v.value) + "}"
                       for v in node.values)
    return None


def claims(path):
    """The statements of every bnlib.claim(...) call in a notebook's code cells."""
    out = []
    for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
        if cell["cell_type"] != "code":
            continue
        for node in ast.walk(ast.parse(_code(cell))):
            if not isinstance(node, ast.Call):
                continue
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)
            if name != "claim":
                continue
            arg = node.args[1] if len(node.args) > 1 else next(
                (k.value for k in node.keywords if k.arg == "statement"), None)
            text = _statement(arg) if arg is not None else None
            if text is not None:
                out.append(_norm(text))
    return out


def _guide_numbers():
    pairs = []
    for rel in GUIDES:
        text = _read(rel)
        for nb in sorted({nb for nb, _, _ in quotes(text or "")}):
            pairs.append((rel, nb))
    return pairs


# --------------------------------------------------------------------------- 1. self-check quotes
@pytest.mark.parametrize("rel", list(GUIDES))
def test_guide_exists_and_quotes_self_checks(rel):
    text = _read(rel)
    assert text is not None, f"{rel} is missing"
    assert len(quotes(text)) >= 30, (
        f"{rel} has only {len(quotes(text))} self-check quotes; the guide gives results as quotes "
        "✓ “statement” (NN) / ✓「statement」（NN） of the notebooks' claims (see tests/test_docs.py)")


@pytest.mark.parametrize("rel", list(GUIDES))
def test_quote_markup_is_well_formed(rel):
    text = _read(rel) or ""
    starts = {m.start() for m in QUOTE.finditer(text)}
    broken = [_line(text, m.start()) for m in QUOTE_START.finditer(text) if m.start() not in starts]
    assert not broken, (
        f"{rel}, line(s) {broken}: a ✓ quote is not closed as ✓ “statement” (NN) or ✓「statement」（NN）"
        " within its paragraph")


@pytest.mark.parametrize("rel, number", _guide_numbers(), ids=lambda v: str(v).replace("/", "_"))
def test_quotes_are_the_notebooks_claims(rel, number):
    folder = GUIDES[rel]
    path = notebook(folder, number)
    if path is None:
        english = notebook(ROOT / "notebooks", number)
        if folder != ROOT / "notebooks" and english is not None:
            pytest.skip(f"{folder.relative_to(ROOT)}/{english.name} does not exist yet (the Japanese twin of "
                        f"notebooks/{english.name}); {rel}'s quotes of {number} are checked once it lands")
        pytest.fail(f"{rel} quotes notebook {number}, but there is no {folder.relative_to(ROOT)}/{number}_*.ipynb")
    have = claims(path)
    wrong = []
    for nb, statement, line in quotes(_read(rel)):
        if nb != number or statement in have:
            continue
        close = difflib.get_close_matches(statement, have, n=1, cutoff=0.5)
        hint = f"\n      the closest claim there now: “{close[0]}”" if close else ""
        wrong.append(f"  line {line}: “{statement}”{hint}")
    assert not wrong, (
        f"{rel} quotes self-checks that {path.relative_to(ROOT)} no longer makes (its claim text changed "
        "or moved to another notebook). Quote the notebook's current statement, verbatim:\n" + "\n".join(wrong))


def test_both_guides_cover_the_same_notebooks():
    numbers = {rel: {nb for nb, _, _ in quotes(_read(rel) or "")} for rel in GUIDES}
    lessons = {p.name[:2] for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb") if claims(p)}
    for rel, have in numbers.items():
        missing = sorted(lessons - have)
        assert not missing, f"{rel} quotes no self-check of notebook(s) {missing}"


# --------------------------------------------------------------------------- 2. N, not m
def _prose(text):
    """Markdown with code, link targets, URLs and HTML comments/tags blanked (lines kept)."""
    def blank(m):
        return re.sub(r"[^\n]", " ", m.group(0))
    for pattern in (r"```.*?```", r"<!--.*?-->", r"`[^`\n]*`", r"\]\([^)\s]*\)", r"https?://\S+", r"<[^>\n]*>"):
        text = re.sub(pattern, blank, text, flags=re.S)
    return text


@pytest.mark.parametrize("rel", list(GUIDES))
def test_batch_size_is_N_not_m(rel):
    text = _read(rel) or ""
    prose = _prose(text)
    bare = re.compile(r"(?<![A-Za-z0-9_'’\-.])m(?![A-Za-z0-9_'’])")
    hits = sorted({_line(prose, m.start()) for m in bare.finditer(prose)})
    assert not hits, (f"{rel}, line(s) {hits}: a bare 'm' (the BN paper's batch size). The series writes "
                      "the batch size N (see the glossary's symbol table)")


# --------------------------------------------------------------------------- 3. links
def glossary_anchors():
    return re.findall(r'<a id="([^"]+)"></a>', GLOSSARY.read_text(encoding="utf-8"))


def test_glossary_anchors_are_unique():
    anchors = glossary_anchors()
    twice = sorted({a for a in anchors if anchors.count(a) > 1})
    assert not twice, f"docs/glossary.md defines these anchors more than once: {twice}"


def _documents():
    docs = [p for p in ROOT.glob("README*.md")] + sorted((ROOT / "docs").rglob("*.md"))
    nbs = sorted((ROOT / "notebooks").rglob("*.ipynb"))
    nbs = [p for p in nbs if ".ipynb_checkpoints" not in p.parts]
    return docs + nbs


def _markdown(path):
    if path.suffix == ".md":
        return path.read_text(encoding="utf-8")
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")


LINK = re.compile(r"\]\(([^)\s]+)\)")


def test_glossary_links_reach_an_anchor():
    anchors = set(glossary_anchors())
    wrong = []
    for path in _documents():
        for target in LINK.findall(_markdown(path)):
            file, _, anchor = target.partition("#")
            if not file.endswith("glossary.md"):
                continue
            where = (path.parent / file).resolve()
            if where != GLOSSARY.resolve():
                wrong.append(f"{path.relative_to(ROOT)}: {target} does not lead to docs/glossary.md")
            elif anchor and anchor not in anchors:
                wrong.append(f"{path.relative_to(ROOT)}: #{anchor} is not an anchor of docs/glossary.md")
    assert not wrong, "\n".join(sorted(set(wrong)))


# --------------------------------------------------------------------------- 4. lesson times
READMES = {"README.md": ("Time needed", "min"), "README.ja.md": ("所要時間", "分")}


def _map_times(readme):
    """{notebook path: minutes} from the rows of a README's notebook map."""
    out = {}
    for line in (ROOT / readme).read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")] if line.startswith("|") else []
        link = next((m for c in cells for m in re.findall(r"\((notebooks/(?:ja/)?\d\d_[^)]+\.ipynb)\)", c)), None)
        times = [c for c in cells if re.search(r"\d+\s*(?:min|分)", c)]
        if link and times:
            out[link] = sorted(int(n) for n in re.findall(r"\d+", times[0]))
    return out


@pytest.mark.parametrize("readme", list(READMES))
def test_readme_times_are_the_notebooks_own(readme):
    label, unit = READMES[readme]
    rows = _map_times(readme)
    assert rows, f"{readme} has no notebook map with times"
    wrong, pending = [], []
    for rel, minutes in rows.items():
        path = ROOT / rel
        if not path.exists():
            (pending if "/ja/" in rel and (ROOT / rel.replace("/ja/", "/")).exists() else wrong).append(
                f"{rel} does not exist")
            continue
        md = "\n".join("".join(c["source"]) for c in json.loads(path.read_text(encoding="utf-8"))["cells"]
                       if c["cell_type"] == "markdown")
        line = next((l for l in md.splitlines() if label in l), "")
        own = sorted(int(n) for n in re.findall(r"(\d+)\s*" + unit, line))
        if own != minutes:
            wrong.append(f"{rel}: the map says {minutes} {unit}, the notebook's '{label}' line says {own}")
    assert not wrong, f"{readme}'s notebook map disagrees with the notebooks:\n" + "\n".join(wrong)
    if pending:
        pytest.skip(f"{readme}: Japanese twins not written yet: {pending}")
