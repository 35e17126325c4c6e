# Both entry points create .venv when it is missing and install the project into it,
# so a fresh clone needs nothing but python3 (>= 3.11) and make.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: demo test lint typecheck unit bench install oracles conformance test-min package-check clean

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
	$(BIN)/deptry src

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

# The declared lower bounds, tested: a fresh venv with every runtime dependency at its
# `>=` version (.ci/min_versions.py), then the unit tests and the integration tests of the
# parts that lean on those dependencies most (CLI, proxy, stdio bridge, login, vMCP).
MIN_VENV := .venv-min
MIN_TESTS := tests/unit tests/integration/test_cli.py tests/integration/test_proxy_mcp.py \
	tests/integration/test_stdio_bridge.py tests/integration/test_login_flow.py \
	tests/integration/test_vmcp.py
test-min:
	rm -rf $(MIN_VENV)
	$(PYTHON) -m venv $(MIN_VENV)
	$(PYTHON) .ci/min_versions.py pyproject.toml > $(MIN_VENV)/constraints.txt
	$(MIN_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(MIN_VENV)/bin/python -m pip install --quiet -c $(MIN_VENV)/constraints.txt -e '.[dev]'
	$(MIN_VENV)/bin/python -m pip freeze | grep -i -E '^(anyio|httpx|httpx2|mcp|msgspec|typer|pydantic|starlette|uvicorn)=='
	# (the property tests with fewer examples here: this run checks the APIs, the main run the properties)
	MCPKEEPER_PROPERTY_EXAMPLES=100 $(MIN_VENV)/bin/python -m pytest -q -p no:cacheprovider $(MIN_TESTS)

# What a user installs: the wheel, built and installed into a fresh venv, run from elsewhere.
PKG_DIR := build/package-check
package-check: install
	rm -rf $(PKG_DIR)
	$(BIN)/python -m pip wheel --quiet --no-deps -w $(PKG_DIR)/dist .
	$(PYTHON) -m venv $(PKG_DIR)/venv
	$(PKG_DIR)/venv/bin/python -m pip install --quiet $(PKG_DIR)/dist/mcpkeeper-*.whl
	version=$$($(BIN)/python -c 'import mcpkeeper; print(mcpkeeper.__version__)') && \
	  cd $(PKG_DIR) && venv/bin/mcpkeeper --version | grep -x "mcpkeeper $$version"
	$(BIN)/python -c "import glob, zipfile; names = zipfile.ZipFile(glob.glob('$(PKG_DIR)/dist/*.whl')[0]).namelist(); assert any(n.endswith('licenses/LICENSE') for n in names), 'no LICENSE in the wheel'"

bench: install
	$(BIN)/python bench/run_all.py

clean:
	rm -rf oracles/node_modules $(VENV) $(MIN_VENV) build .pytest_cache .mypy_cache .ruff_cache
