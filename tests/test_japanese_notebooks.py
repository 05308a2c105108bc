"""The Japanese edition runs top to bottom like the English one, and its figures have every glyph.

nbval (pyproject.toml) executes notebooks/ but not notebooks/ja/: these notebooks are executed
here instead, in a fresh kernel each, because nbval in lax mode does not look at what a cell
prints, and a glyph the font lacks only shows as a warning in a cell's output ("Glyph 12354 …
missing from font(s) DejaVu Sans") — the figure then has boxes where the Japanese should be.
A cell that raises (a self-check whose claim fails, an error) fails the test as nbval would.
"""
import pathlib

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = pathlib.Path(__file__).resolve().parent.parent
JA = ROOT / "notebooks" / "ja"
NOTEBOOKS = sorted(JA.glob("[0-9][0-9]_*.ipynb")) + sorted((JA / "solutions").glob("[0-9][0-9]_*.ipynb"))
# matplotlib warns "Glyph 12354 … missing from font(s) …"; mathtext logs "Font 'default' does not
# have a glyph for …" (a mathtext string with kana or kanji in it draws them as boxes)
FONT_WARNINGS = ("missing from font", "Glyph ", "does not have a glyph")


def printed(cell):
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream":
            yield out.get("text", "")
        elif out.get("output_type") in ("display_data", "execute_result"):
            yield out.get("data", {}).get("text/plain", "")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: str(p.relative_to(JA)))
def test_japanese_notebook_runs_and_draws_every_glyph(path):
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}})
    try:
        client.execute()
    except CellExecutionError as e:
        pytest.fail(f"{path.relative_to(ROOT)} stopped with an error:\n{str(e)[-3000:]}")
    bad = [(i, text.strip()[:300]) for i, cell in enumerate(nb.cells) if cell.cell_type == "code"
           for text in printed(cell) if any(w in text for w in FONT_WARNINGS)]
    assert not bad, f"{path.name}: a figure lacks glyphs (cell {bad[0][0]}): {bad[0][1]}"
