"""Committed notebooks: clean (no outputs), complete (goals, predictions, exercises, next link),
and listed in the README's notebook map. Executing them is nbval's job (pytest collects
notebooks/ with --nbval-lax, see pyproject.toml)."""
import json
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
LESSONS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
SOLUTIONS = sorted((ROOT / "notebooks" / "solutions").glob("*.ipynb"))


def cells(path):
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def text(path, kind=None):
    return "\n".join("".join(c["source"]) for c in cells(path) if kind is None or c["cell_type"] == kind)


def test_there_are_notebooks():
    assert LESSONS, "no notebooks found in notebooks/"


@pytest.mark.parametrize("path", LESSONS + SOLUTIONS, ids=lambda p: p.name)
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


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.name)
def test_code_cells_stay_short(path):
    long = [i for i, c in enumerate(cells(path)) if c["cell_type"] == "code"
            and len("".join(c["source"]).strip().splitlines()) > 15]
    assert not long, f"{path.name}: code cells {long} are longer than 15 lines; move the work into bnlib"


def test_readme_lists_every_notebook():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    missing = [p.name for p in LESSONS if p.name not in readme]
    assert not missing, f"README's notebook map misses {missing}"
