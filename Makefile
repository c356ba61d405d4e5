# The habits: make demo, make test, make check, make bench. Each sets itself up on a fresh machine.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
# one numba cache for every process: the install's own (gateway/numba_cache.py), filled once by
# `minewatch compile` when the venv is made, so tests, the demo and a first replay start warm
export NUMBA_CACHE_DIR ?= $(CURDIR)/$(VENV)/var/cache/minewatch-numba

.PHONY: demo test fuzz check bench bench-quick tools venv clean wheelhouse install-offline

$(VENV)/.installed: pyproject.toml
	@command -v python3 >/dev/null || { echo "python3 (>= 3.11) is needed"; exit 1; }
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,demo,plot]'
	$(PY) -m gateway.numba_cache
	@touch $@

venv: $(VENV)/.installed

# Real parts the tests start themselves: Mosquitto (broker), mbpoll (a libmodbus client that
# proves the simulator speaks real Modbus). Installed with apt-get when missing and we are root.
tools:
	@bash tests/support/install_tools.sh

demo: $(VENV)/.installed
	@bash tests/support/install_tools.sh --optional mosquitto || true
	$(PY) -m firmware_sim.cli demo

# one worker per core (pytest-xdist): most integration tests wait on a simulated clock, so two
# run side by side; work stealing keeps both busy to the end (11 min against 17 with xdist's
# default split and 22 one after the other, on the 2-core machine)
test: $(VENV)/.installed tools
	$(PY) -m pytest -n auto --dist worksteal

# The property-based tests (Hypothesis) with 25 times the examples `make test` runs and a fresh
# random seed each run: damaged site configs, logger exports, Modbus reply frames (the framer,
# and the poller over real sockets). About 10 minutes on 2 cores; FUZZ_FACTOR=100 for longer.
FUZZ_FACTOR ?= 25
FUZZ_TESTS := tests/unit/test_config_fuzz.py tests/unit/test_replay_fuzz.py \
	tests/unit/test_modbus_replies.py tests/unit/test_encode.py tests/integration/test_reply_fuzz.py
fuzz: $(VENV)/.installed
	HYPOTHESIS_PROFILE=fuzz MINEWATCH_FUZZ_FACTOR=$(FUZZ_FACTOR) $(PY) -m pytest -p no:cacheprovider \
		--hypothesis-show-statistics $(FUZZ_TESTS)

check: $(VENV)/.installed
	$(VENV)/bin/ruff check .

bench: $(VENV)/.installed
	$(PY) -m benchmarks.run

# MineWatch and collectd on a 20 x 20 site for 20 s; fails only on a crash, never on timing
bench-quick: $(VENV)/.installed tools
	$(PY) -m benchmarks.peers --quick

# Offline install for a site without internet: `make wheelhouse` on a connected machine of the
# same kind (architecture, Python version), copy the repository with wheelhouse/ to the site, then
# `make install-offline` there: pip installs only from wheelhouse/, never from the network.
wheelhouse: $(VENV)/.installed
	rm -rf wheelhouse
	$(PY) -m pip wheel --quiet --wheel-dir wheelhouse .
	@echo "wheelhouse/ holds $$(ls wheelhouse | wc -l) wheels; copy it with the repository to the site"

install-offline:
	@test -d wheelhouse || { echo "no wheelhouse/: run 'make wheelhouse' on a connected machine first"; exit 1; }
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --no-index --find-links wheelhouse minewatch
	$(VENV)/bin/minewatch compile
	@touch $(VENV)/.installed
	@echo "installed offline: $(VENV)/bin/minewatch"

clean:
	rm -rf $(VENV) .cache state .pytest_cache
