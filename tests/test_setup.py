"""The two commands: `make lab` gives a learner only what the notebooks need, `make test` adds
the test tools on top, and both JupyterLabs (local and Binder) read the same settings file."""
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parent.parent
MAKEFILE = (ROOT / "Makefile").read_text()


def recipe(target):
    """The prerequisites and the recipe lines of a Makefile target."""
    m = re.search(rf"^{re.escape(target)}:([^\n]*)\n((?:\t[^\n]*\n)*)", MAKEFILE, re.M)
    assert m, f"Makefile has no target {target}"
    return m.group(1).split(), m.group(2)


def test_lab_installs_the_runtime_pins_only():
    prereqs, _ = recipe("lab")
    assert prereqs == ["$(VENV)/.installed"]
    _, lines = recipe("$(VENV)/.installed")
    assert "-r requirements.txt" in lines and "requirements-test.txt" not in lines


def test_test_adds_the_test_tools():
    prereqs, _ = recipe("test")
    assert prereqs == ["$(VENV)/.installed-test"]
    prereqs, lines = recipe("$(VENV)/.installed-test")
    assert "$(VENV)/.installed" in prereqs and "-r requirements-test.txt" in lines


def test_local_jupyterlab_gets_binders_overrides():
    _, lines = recipe("$(VENV)/.installed")
    assert "cp binder/overrides.json $(LAB_SETTINGS)" in lines
    assert "LAB_SETTINGS := $(VENV)/share/jupyter/lab/settings/overrides.json" in MAKEFILE
    assert "cp binder/overrides.json" in (ROOT / "binder" / "postBuild").read_text()


def test_ci_runs_the_readmes_test_command():
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    assert "make test" in (ROOT / "README.md").read_text()
