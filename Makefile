# scopenet — the two commands a newcomer needs: `make demo` and `make test`.
# Day to day, without root or servers: `make test-<service>` (ipam, topology, api, l3_agent) or `make test-libs`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt
#: Every distribution of the workspace, the shared libraries first (see pyproject.toml).
LIBS     := contracts client runtime bus store infra policy datapath netlink bgp
SERVICES := ipam topology api l3_agent
DISTS    := $(LIBS:%=libs/%) $(SERVICES:%=services/%) commands
HASH     := $(shell cat pyproject.toml constraints.txt $(DISTS:%=%/pyproject.toml) tests/node/package-lock.json | sha1sum | cut -c1-12)
DEV      := $(VENV)/.dev-$(HASH)
E2E      := $(VENV)/.e2e-$(HASH)
#: Keystone (tests, `scopenet up --keystone`) in a venv of its own: its pins are not the workspace's.
KEYSTONE_VENV := .venv-keystone
KEYSTONE      := $(KEYSTONE_VENV)/.installed-$(shell sha1sum deploy/keystone/requirements.txt | cut -c1-12)

.PHONY: demo test test-libs soak lint schemas docs clean install install-dev lock os-deps $(SERVICES:%=test-%)

## Everything `make test` needs: the workspace, the real clients the whole-stack tests drive, npm's
## nats, and Keystone in its own venv.
install: $(E2E) $(KEYSTONE)

## The workspace in editable mode with the dev tools: enough for unit tests and lint.
install-dev: $(DEV)

$(DEV): pyproject.toml constraints.txt $(DISTS:%=%/pyproject.toml)
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "scopenet needs Python 3.11+")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check pip==26.3 setuptools==80.9.0
	@# One resolution for all distributions, editable (a static .pth per src/ directory: editors,
	@# mypy and import-linter read the code where it is).
	$(PIP) --no-build-isolation $(DISTS:%=-e %) --group dev
	@rm -f $(VENV)/.dev-* $(VENV)/.e2e-*
	@touch $@

$(E2E): $(DEV)
	$(PIP) --group e2e
	@# The Node.js tests (another system driving scopenet over NATS, decoding its CloudEvents; the
	@# AsyncAPI parser) need npm's `nats`, `cloudevents` and `@asyncapi/parser`; no install-time analytics.
	@if command -v npm >/dev/null; then SCARF_ANALYTICS=false npm ci --prefix tests/node --no-audit --no-fund --silent; \
	 else echo "scopenet: npm not found: tests/node cannot be installed (install Node.js 18+)"; fi
	@touch $@

$(KEYSTONE): deploy/keystone/requirements.txt
	$(PYTHON) -m venv $(KEYSTONE_VENV)
	$(KEYSTONE_VENV)/bin/pip install --quiet --disable-pip-version-check pip==26.3
	$(KEYSTONE_VENV)/bin/pip install --quiet --disable-pip-version-check -r deploy/keystone/requirements.txt
	@rm -f $(KEYSTONE_VENV)/.installed-*
	@touch $@

## Re-pin every third-party version after changing a dependency: constraints.txt from a fresh resolution.
lock:
	rm -rf build/lock && $(PYTHON) -m venv build/lock
	build/lock/bin/pip install --quiet pip==26.3 setuptools==80.9.0
	build/lock/bin/pip install --quiet --no-build-isolation $(DISTS:%=-e %) --group dev --group e2e
	build/lock/bin/pip freeze --exclude-editable | grep -v '^scopenet' > constraints.txt
	rm -rf build/lock

## OS tools of the datapath (nftables, libnftables, iproute2, ping, conntrack): installs what is
## missing with apt-get when root, else says in one line what is missing (the demo then runs its
## control-plane part only).
os-deps:
	-@scripts/os-deps.sh

## The seed's walkthrough end to end on an embedded stack, with the connectivity table.
## `make demo DEMO_FLAGS=--keystone` runs it with Keystone's password credentials instead of tokens
## (only then is Keystone's own venv built).
demo: $(E2E) $(if $(findstring --keystone,$(DEMO_FLAGS)),$(KEYSTONE)) os-deps
	$(BIN)/scopenet demo $(DEMO_FLAGS)

## Every test: each service's and library's own, contract, integration (real Postgres and NATS),
## datapath (root + netns), faults.
test: $(E2E) $(KEYSTONE) os-deps
	$(BIN)/pytest -q

## One service's own tests: seconds, no Postgres, no NATS, no root.
$(SERVICES:%=test-%): test-%: $(DEV)
	$(BIN)/pytest -q services/$*

## The shared libraries' own tests (pure, no servers).
test-libs: $(DEV)
	$(BIN)/pytest -q libs

## The fault tests, long: NATS and Postgres outages and the kill -9 loop under load, each driven
## for SOAK_SECONDS (CI runs short versions); the results go into docs/reliability.md.
SOAK_SECONDS ?= 600
soak: $(E2E) os-deps
	@mkdir -p build && rm -f build/soak.jsonl
	SCOPENET_SOAK_SECONDS=$(SOAK_SECONDS) SCOPENET_SOAK_REPORT=$(CURDIR)/build/soak.jsonl \
	  $(BIN)/pytest -q -s -p no:cacheprovider --timeout=0 tests/faults; code=$$?; \
	  $(BIN)/python scripts/soak_report.py build/soak.jsonl docs/reliability.md --seconds $(SOAK_SECONDS) \
	    --exit-code $$code; exit $$code

## Static checks CI runs beside the tests: format and lint, types, layers, import cycles, and the
## generated parts of proto/ and docs/ being up to date.
lint: $(DEV)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/python scripts/check_cycles.py
	$(BIN)/python scripts/gen_docs.py --check

## Regenerate proto/ (JSON Schemas, index.json, the AsyncAPI document) from the pydantic contracts
## (a contract test fails when they drift; tests/contract/test_asyncapi.py validates the AsyncAPI).
schemas: $(DEV)
	$(BIN)/python scripts/gen_schemas.py

## Regenerate the reference tables in docs/ (subjects, settings) from the code.
docs: $(DEV)
	$(BIN)/python scripts/gen_docs.py

clean:
	rm -rf $(VENV) $(KEYSTONE_VENV) .pytest_cache .mypy_cache .ruff_cache
