# Both entry points create .venv when it is missing and install the project into it,
# so a fresh clone needs nothing but python3 (>= 3.11) and make.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: demo test lint typecheck unit bench install oracles conformance clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# Parts nobody here wrote, used as test oracles (Node 22, oidc-provider, the MCP
# conformance suite), pinned by oracles/package-lock.json.
ORACLES_STAMP := oracles/node_modules/.installed-stamp
$(ORACLES_STAMP): oracles/package.json oracles/package-lock.json
	npm ci --prefix oracles --no-audit --no-fund --loglevel=error
	touch $(ORACLES_STAMP)

oracles: $(ORACLES_STAMP)

demo: install
	$(BIN)/python -m mcpkeeper.demo

lint: install
	$(BIN)/ruff check src tests bench conformance

typecheck: install
	$(BIN)/mypy --strict src

# oracles: the integration suite runs against oidc-provider; a fresh clone installs it here.
test: lint typecheck oracles
	$(BIN)/python -m pytest

# The official MCP conformance suite through the proxy (README.md, "Conformance"): every
# client scenario through `mcpkeeper proxy --stdio`, then every server scenario against a
# reference server directly and through `mcpkeeper proxy --port` (the results must match).
conformance: install oracles
	$(BIN)/python conformance/run.py client
	$(BIN)/python conformance/run.py server

bench: install
	$(BIN)/python bench/run_all.py

clean:
	rm -rf oracles/node_modules $(VENV) .pytest_cache .mypy_cache .ruff_cache
