# make lab   — create .venv if needed, then open JupyterLab at the series' start page
# make test  — create .venv if needed, then run every test and notebook
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: lab test bench bench-notebooks bench-sliders clean

$(VENV)/.installed: requirements.txt requirements-test.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -r requirements-test.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

lab: $(VENV)/.installed
	$(BIN)/jupyter lab notebooks/00_start_here.ipynb

test: $(VENV)/.installed
	$(BIN)/python -m pytest

bench: $(VENV)/.installed
	$(BIN)/python bench/train_speed.py

# each notebook's run time and peak kernel memory in a fresh kernel, and the series' total
bench-notebooks: $(VENV)/.installed
	$(BIN)/python bench/notebooks.py

# key press → new pixels for every slider figure, in JupyterLab + Debian's Chromium
bench-sliders: $(VENV)/.installed
	$(BIN)/python bench/slider_latency.py

clean:
	rm -rf $(VENV)
