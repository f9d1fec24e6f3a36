# The two commands a new user needs (README.md): `make lab` and `make test`.
# Both create .venv on first use and install what they need into it.

PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
ROOT_FLAG = $(if $(filter 0,$(shell id -u)),--allow-root,)

.PHONY: lab test bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e ".[test,lab]"
	touch $@

lab: $(VENV)/.installed
	$(BIN)/jupyter lab $(ROOT_FLAG) notebooks/01-quickstart.ipynb

test: $(VENV)/.installed
	$(BIN)/pytest $(PYTEST_ARGS)

bench: $(VENV)/.installed
	$(BIN)/python benchmarks/load.py

clean:
	rm -rf $(VENV) .pytest_cache
