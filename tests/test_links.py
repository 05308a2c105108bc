"""Every relative link a learner can click — in the notebooks of both editions, the READMEs and
docs/ — points at a file that exists, and every #anchor into a Markdown file at an anchor it has."""
import json
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
PAGES = (sorted(ROOT.glob("notebooks/**/*.ipynb")) + sorted(ROOT.glob("docs/**/*.md"))
         + sorted(ROOT.glob("README*.md")))
PAGES = [p for p in PAGES if ".ipynb_checkpoints" not in p.parts]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def text(path):
    """The page's Markdown without code (a `[x](y)` in backticks is an example, not a link)."""
    if path.suffix == ".ipynb":
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        body = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    else:
        body = path.read_text(encoding="utf-8")
    body = re.sub(r"```.*?```", "", body, flags=re.S)
    return re.sub(r"`[^`\n]*`", "", body)


def anchors(path):
    """Explicit <a id="…"> anchors and GitHub's heading slugs of a Markdown file."""
    body = path.read_text(encoding="utf-8")
    ids = set(re.findall(r'<a id="([^"]+)"', body))
    for heading in re.findall(r"^#+\s+(.+)$", body, re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        ids.add(slug)
    return ids


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page):
    broken = []
    for target in LINK.findall(text(page)):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue                                   # web addresses, and anchors within the page
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve()
        if not resolved.exists():
            broken.append(target)
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            broken.append(target)
    assert not broken, f"{page.relative_to(ROOT)}: broken links {broken}"
