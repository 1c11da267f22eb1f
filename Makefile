# scopenet — the two commands a newcomer needs: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)

.PHONY: demo test soak lint schemas clean install os-deps

install: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "scopenet needs Python 3.11+")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	@# The Node.js publisher test (another system driving scopenet over NATS) needs npm's `nats`.
	@if command -v npm >/dev/null; then npm ci --prefix tests/node --no-audit --no-fund --silent; \
	 else echo "scopenet: npm not found: tests/node cannot be installed (install Node.js 18+)"; fi
	@rm -f $(VENV)/.installed-*
	@touch $@

## OS tools of the datapath (nftables, libnftables, iproute2, ping, conntrack): installs what is
## missing with apt-get when root, else says in one line what is missing (the demo then runs its
## control-plane part only).
os-deps:
	-@scripts/os-deps.sh

## The seed's walkthrough end to end on an embedded stack, with the connectivity table.
demo: $(STAMP) os-deps
	$(BIN)/scopenet demo

## Every test: unit, contract, integration (real Postgres and NATS), datapath (root + netns).
test: $(STAMP) os-deps
	$(BIN)/pytest -q

## The fault tests, long: NATS and Postgres outages and the kill -9 loop under load, each driven
## for SOAK_SECONDS (CI runs short versions); the results go into docs/reliability.md.
SOAK_SECONDS ?= 600
soak: $(STAMP) os-deps
	@mkdir -p build && rm -f build/soak.jsonl
	SCOPENET_SOAK_SECONDS=$(SOAK_SECONDS) SCOPENET_SOAK_REPORT=$(CURDIR)/build/soak.jsonl \
	  $(BIN)/pytest -q -s -p no:cacheprovider --timeout=0 tests/faults; code=$$?; \
	  $(BIN)/python scripts/soak_report.py build/soak.jsonl docs/reliability.md --seconds $(SOAK_SECONDS) \
	    --exit-code $$code; exit $$code

## Static checks CI runs beside the tests. mypy and import-linter cannot follow setuptools'
## package-dir mapping (libs/ -> scopenet, services/ -> scopenet.services), so they read the
## package through a tree of symlinks that mirrors it.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	@rm -rf .lint && mkdir -p .lint/scopenet
	@for f in libs/*; do ln -s ../../$$f .lint/scopenet/; done
	@ln -s ../../services .lint/scopenet/services
	MYPYPATH=.lint $(BIN)/mypy -p scopenet
	PYTHONPATH=.lint $(BIN)/lint-imports

## Regenerate proto/ from the pydantic contracts (a contract test fails when they drift).
schemas: $(STAMP)
	$(BIN)/python scripts/gen_schemas.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
