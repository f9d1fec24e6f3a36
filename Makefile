# The two commands a new user needs (README.md): `make lab` and `make test`.
# Both create .venv on first use and install what they need into it.

PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
ROOT_FLAG = $(if $(filter 0,$(shell id -u)),--allow-root,)

.PHONY: lab test bench clean sysdeps

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# torch first, from the local CPU build, so nothing pulls a CUDA build (needed by the `embed` extra).
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q "torch==2.13.0" || echo "note: torch 2.13.0 not available here; meaning search stays off"
	$(BIN)/pip install -q -e ".[test,lab,embed,bench]" || $(BIN)/pip install -q -e ".[test,lab,bench]"
	$(BIN)/pip install -q -e ".[phoenix]" || echo "note: arize-phoenix did not install; the Phoenix export tests skip"
	$(BIN)/pip install -q -e ".[ray]" || echo "note: ray did not install; batch's Ray executor and its tests skip"
	touch $@

# The front-end (the widget bundle and the prebuilt JupyterLab extension) is built by the pip install above
# (hatch-jupyter-builder, needs node + npm); this rebuilds it when labextension/ changes and links the extension
# into the venv so a page reload picks up the new build.
JS_SRC = $(wildcard labextension/src/*.ts) labextension/package.json labextension/style/index.css
$(VENV)/.js: $(JS_SRC) | $(VENV)/.installed
	test -d labextension/node_modules || npm --prefix labextension ci --no-audit --no-fund
	PATH="$(CURDIR)/$(BIN):$$PATH" npm --prefix labextension run build
	PATH="$(CURDIR)/$(BIN):$$PATH" jupyter-builder develop --overwrite . >/dev/null
	touch $@

# bubblewrap gives the REPL worker its own network, filesystem view and user (docs/isolation.md); Debian's chromium
# runs the browser tests. Installed when we can (root + apt); without bubblewrap the worker falls back to rlimits +
# seccomp and says so in every trace.
sysdeps:
	@missing=""; \
	command -v bwrap >/dev/null 2>&1 || missing="$$missing bubblewrap"; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	command -v npm >/dev/null 2>&1 || missing="$$missing nodejs npm"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null) \
	      || echo "note: could not install$$missing"; \
	  else echo "note: not installed:$$missing (bubblewrap: the REPL worker falls back to rlimits + seccomp," \
	    "docs/isolation.md; chromium: the browser tests are skipped; npm: the front-end cannot be built)"; fi; \
	fi

lab: sysdeps $(VENV)/.installed $(VENV)/.js
	$(BIN)/jupyter lab $(ROOT_FLAG) notebooks/01-quickstart.ipynb

test: sysdeps $(VENV)/.installed $(VENV)/.js
	$(BIN)/pytest $(PYTEST_ARGS)

bench: $(VENV)/.installed $(VENV)/.js
	$(BIN)/python benchmarks/load.py
	$(BIN)/python benchmarks/context.py
	$(BIN)/python benchmarks/engine.py
	$(BIN)/python benchmarks/xray.py
	$(BIN)/python benchmarks/widget.py
	$(BIN)/python benchmarks/trace_read.py
	$(BIN)/python benchmarks/fuzz_load.py

clean:
	rm -rf $(VENV) .pytest_cache labextension/lib rlm_jupyter/labextension rlm_jupyter/jupyter/static/trace-view.js
