# make lab   — create .venv if needed with what the notebooks need, then open JupyterLab at the start page
# make test  — the same, plus the test tools, then run every test and notebook
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# JupyterLab reads overrides.json from the app settings folder of the Python that runs it; Binder's
# postBuild copies the same file there (one settings file: no "Jupyter news" prompt, no update check)
LAB_SETTINGS := $(VENV)/share/jupyter/lab/settings/overrides.json

.PHONY: lab lab-ja test bench bench-notebooks bench-sliders clean

# learners: the runtime pins only (no browser driver, Binder tools or pytest to download)
$(VENV)/.installed: requirements.txt pyproject.toml binder/overrides.json
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	mkdir -p $(dir $(LAB_SETTINGS))
	cp binder/overrides.json $(LAB_SETTINGS)
	touch $@

# tests and benchmarks: the test tools on top
$(VENV)/.installed-test: $(VENV)/.installed requirements-test.txt
	$(BIN)/python -m pip install --quiet -r requirements-test.txt
	touch $@

lab: $(VENV)/.installed
	$(BIN)/jupyter lab notebooks/00_start_here.ipynb

# 日本語版の入口
lab-ja: $(VENV)/.installed
	$(BIN)/jupyter lab notebooks/ja/00_start_here.ipynb

test: $(VENV)/.installed-test
	$(BIN)/python -m pytest

bench: $(VENV)/.installed-test
	$(BIN)/python bench/train_speed.py

# each notebook's run time and peak kernel memory in a fresh kernel, and the series' total
bench-notebooks: $(VENV)/.installed-test
	$(BIN)/python bench/notebooks.py

# key press → new pixels for every slider figure, in JupyterLab + Debian's Chromium
bench-sliders: $(VENV)/.installed-test
	$(BIN)/python bench/slider_latency.py

clean:
	rm -rf $(VENV)
