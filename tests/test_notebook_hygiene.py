"""Committed notebooks: clean (no outputs), complete (goals, predictions, exercises, next link),
self-checks collapsed, and listed in the README's notebook map — in both editions (the Japanese
twins' own parts are checked in test_editions.py). Executing them is nbval's job (pytest collects
notebooks/ with --nbval-lax, see pyproject.toml) and test_japanese_notebooks.py's for notebooks/ja/."""
import json
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
LESSONS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
SOLUTIONS = sorted((ROOT / "notebooks" / "solutions").glob("*.ipynb"))
JA_LESSONS = sorted((ROOT / "notebooks" / "ja").glob("[0-9][0-9]_*.ipynb"))
JA_SOLUTIONS = sorted((ROOT / "notebooks" / "ja" / "solutions").glob("*.ipynb"))
EVERY = LESSONS + SOLUTIONS + JA_LESSONS + JA_SOLUTIONS


def name(path):
    return str(path.relative_to(ROOT / "notebooks"))


def cells(path):
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def text(path, kind=None):
    return "\n".join("".join(c["source"]) for c in cells(path) if kind is None or c["cell_type"] == kind)


def test_there_are_notebooks():
    assert LESSONS, "no notebooks found in notebooks/"


@pytest.mark.parametrize("path", EVERY, ids=name)
def test_committed_without_outputs(path):
    dirty = [i for i, c in enumerate(cells(path))
             if c["cell_type"] == "code" and (c.get("outputs") or c.get("execution_count"))]
    assert not dirty, f"{path.name}: cells {dirty} carry outputs; clear them before committing"


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.name)
def test_lesson_has_the_parts_every_lesson_needs(path):
    md = text(path, "markdown")
    assert re.search(r"(?i)goals", md), "states its learning goals"
    assert re.search(r"(?i)\b\d+\s*(–|-|to)?\s*\d*\s*min", md), "says how long it takes"
    if not path.name.startswith("00_"):
        assert re.search(r"(?i)predict", md), "asks learners to predict before they run"
    assert re.search(r"(?i)exercise", md), "ends with exercises"
    assert re.search(r"(?i)summary", md), "has a summary"
    number = int(path.name[:2])
    nxt = [p.name for p in LESSONS if int(p.name[:2]) == number + 1]
    if nxt:
        assert nxt[0] in md, f"links to the next notebook {nxt[0]}"


@pytest.mark.parametrize("path", EVERY, ids=name)
def test_self_checks_are_collapsed(path):
    """Cells that check claims show their ✓ lines, not a wall of bnlib.claim(...) code."""
    open_checks = [i for i, c in enumerate(cells(path)) if c["cell_type"] == "code"
                   and "bnlib.claim(" in "".join(c["source"])
                   and not c.get("metadata", {}).get("jupyter", {}).get("source_hidden")]
    hidden_outputs = [i for i, c in enumerate(cells(path))
                      if c.get("metadata", {}).get("jupyter", {}).get("outputs_hidden")]
    assert not open_checks, (f"{name(path)}: self-check cells {open_checks} show their source; set "
                             f'"jupyter": {{"source_hidden": true}} in their metadata')
    assert not hidden_outputs, f"{name(path)}: cells {hidden_outputs} hide their outputs (the ✓ lines)"


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.name)
def test_code_cells_stay_short(path):
    long = [i for i, c in enumerate(cells(path)) if c["cell_type"] == "code"
            and len("".join(c["source"]).strip().splitlines()) > 15]
    assert not long, f"{path.name}: code cells {long} are longer than 15 lines; move the work into bnlib"


def test_readme_lists_every_notebook():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    missing = [p.name for p in LESSONS if p.name not in readme]
    assert not missing, f"README's notebook map misses {missing}"


def test_japanese_readme_lists_every_japanese_notebook():
    readme = (ROOT / "README.ja.md").read_text(encoding="utf-8")
    missing = [p.name for p in JA_LESSONS if f"notebooks/ja/{p.name}" not in readme]
    assert not missing, f"README.ja.md's notebook map misses {missing}"
