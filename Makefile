# Thin wrappers over the scripts the README names. Run as root on Debian 12 for the real programs.
PY      ?= /usr/bin/python3
VENV    ?= .venv
BIN     := $(VENV)/bin
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: all venv deps demo test unit integration lint fuzz bench nagios-configs zabbix-templates \
        zabbix-screenshot dist clean

all: test

# The venv comes from /usr/bin/python3 (docs/reference.md: a pyenv python under /root cannot be
# run by the nagios or zabbix users and starts 6x slower).
$(BIN)/python:
	$(PY) -m venv $(VENV)

venv: $(BIN)/python
	$(BIN)/pip install -q -e '.[test]'
	@$(BIN)/pip install -q -e '.[test,psk]' >/dev/null 2>&1 || echo "venv: sslpsk3 did not \
	build (needs gcc, python3-dev, libssl-dev): TLSConnect=psk and its test are unavailable"

deps:
	scripts/install-deps.sh

demo: deps venv
	$(BIN)/python scripts/demo.py $(DEMO_ARGS)

test: deps venv lint
	$(BIN)/python -m pytest -ra $(PYTEST_ARGS)

unit: venv
	$(BIN)/python -m pytest -q tests/unit

integration: deps venv
	$(BIN)/python -m pytest -ra tests/integration

# Python 3.9 (requires-python) is checked, not only claimed: mypy types the package against 3.9's
# standard library ([tool.mypy]); vermin finds syntax and stdlib names newer than 3.9 anywhere.
# Its two exclusions are false positives: bytes.decode read as Python 2's str.decode, and
# ssl's PSK callback, used only under a Python >= 3.13 check (zabbix/sender.py).
VERMIN := $(BIN)/vermin -q -t=3.9- --violations --no-tips --eval-annotations \
          --exclude str.decode --exclude ssl.SSLContext.set_psk_client_callback
PYFILES = $(wildcard checks tests tools scripts benchmarks debian/install-private.py)
# vermin does not read .gitignore (ruff does): the benchmarks' own venv under benchmarks/data
# would be scanned and fail the lint, so vermin gets the tracked and new files git knows
VERMIN_FILES = $(shell git ls-files -co --exclude-standard -- $(PYFILES) 2>/dev/null | grep '\.py$$' \
                 || find $(PYFILES) -name '*.py' -not -path '*/data/*')

# 100,000 generated state, position and spool files per loader (tests/unit/test_state_fuzz.py;
# make test runs a sample of 150); not in CI's time: ~65 min on 2 cores (the listing loader
# ~40 of them); prints the figures
fuzz: venv
	FUZZ_EXAMPLES=100000 $(BIN)/python -m pytest -q -s -p no:cacheprovider tests/unit/test_state_fuzz.py

lint: venv
	$(BIN)/ruff check $(PYFILES)
	$(BIN)/mypy
	$(VERMIN) $(VERMIN_FILES)

bench: deps venv
	$(BIN)/python benchmarks/run.py $(BENCH_ARGS)

nagios-configs: venv
	$(BIN)/python -m postfix_queue_monitor.nagios_gen
	$(BIN)/python -m postfix_queue_monitor.director_basket

zabbix-templates: venv
	$(BIN)/python -m postfix_queue_monitor.zabbix.template zabbix_templates

# docs/zabbix-dashboard.png from a lab Zabbix fed by a growing private queue (root, ~3 min);
# chromium is not in install-deps.sh, so CI does not download it
zabbix-screenshot: deps venv
	flock /tmp/apt.lock apt-get install -y -q --no-install-recommends chromium chromium-driver >/dev/null
	$(BIN)/python tools/zabbix_lab.py screenshot docs/zabbix-dashboard.png

# dist/: wheel + sdist (twine check --strict) and the Debian package (scripts/build-deb.sh,
# lintian-clean); docs/packaging.md
dist: deps venv
	$(BIN)/pip install -q -e '.[test,dist]'
	rm -rf dist
	$(BIN)/python -m build -q --outdir dist . >/dev/null
	$(BIN)/twine check --strict dist/*.whl dist/*.tar.gz
	scripts/build-deb.sh dist

clean:
	rm -rf $(VENV) build dist *.egg-info checks/*.egg-info .pytest_cache .ruff_cache
