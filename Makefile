# tlcourse: every target sets itself up first (virtual environment, packages, offline data).
#   make course   runs the course's main job: executes the chapter notebooks, prints each chapter's table
#   make test     runs make lint, then every test: package, notebooks (nbval), grading pipeline
#   make lint     ruff (lint and format) over the repository, and the notebooks committed without outputs
#   make hub      starts a class on this machine: JupyterHub on 127.0.0.1 with the roster's people (Ctrl-C stops it)
#   make clean    removes executed notebooks and caches; grading state stays (make clean-grades asks, or FORCE=1)
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
# nbgrader calls tools of its environment (alembic) by name: put the environment first on PATH.
export PATH := $(abspath $(VENV))/bin:$(PATH)

.PHONY: setup data sandbox chromium hub-proxy hub course lint test lab expected benchmark benchmark-tests clean clean-grades

# Re-install only when the package's dependencies change. uv (installed into the environment by its pip) does the
# install: the same versions as pip, in about a fifth of the time. uv reads no pip.conf: where pip's own index or
# constraints must hold, run with INSTALLER=pip (or set UV_INDEX_URL); if uv fails, pip installs instead.
INSTALLER ?= uv
UV_VERSION := 0.13.9
$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "tlcourse needs Python 3.11 or newer: run make with PYTHON=python3.11"; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "installing tlcourse and its dependencies into $(VENV) with $(INSTALLER) (a minute or two the first time) ..."
	@{ [ "$(INSTALLER)" = uv ] && $(PY) -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION) && \
		$(VENV)/bin/uv pip install --quiet --compile-bytecode --python $(PY) -e '.[dev]'; } || \
		{ [ "$(INSTALLER)" = uv ] && echo "uv could not install: installing with pip (a few minutes) ..."; \
		  $(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'; }
	@touch $@

setup: $(STAMP) data

data: $(STAMP)
	@bash data_scripts/install_offline_data.sh $(PY)

course: setup
	$(PY) -m tlcourse course

# Fast checks first: a lint error or a notebook committed with outputs fails the test command in seconds.
lint: $(STAMP)
	@$(PY) -m ruff check . || { echo "make lint: ruff check found the errors above (fix them; many: $(PY) -m ruff check --fix .)"; exit 1; }
	@$(PY) -m ruff format --check . || { echo "make lint: the files above are not formatted (run: $(PY) -m ruff format .)"; exit 1; }
	@$(PY) -m tlcourse.classroom.notebook_hygiene notebooks || { echo "make lint: a notebook is not clean (see above)"; exit 1; }

# The grader's sandbox (bubblewrap): installed with apt where this runs as root, as the data is; elsewhere
# the sandbox's tests are skipped with their reason, and `grade autograde` says it runs unsandboxed.
sandbox:
	@command -v bwrap >/dev/null 2>&1 || { [ "$$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1 && \
		{ DEBIAN_FRONTEND=noninteractive apt-get install -y -q bubblewrap >/dev/null 2>&1 || \
		  { DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null 2>&1; \
		    DEBIAN_FRONTEND=noninteractive apt-get install -y -q bubblewrap >/dev/null 2>&1; }; }; } || \
		echo "note: bubblewrap is not installed (apt-get install bubblewrap): the sandbox tests are skipped"

# The browser tests' chromium (Debian's; Playwright drives it by path): installed with apt where this runs as
# root, as bubblewrap is; elsewhere the browser tests are skipped with their reason.
chromium:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
		{ [ "$$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1 && \
		{ DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null 2>&1 || \
		  { DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null 2>&1; \
		    DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null 2>&1; }; }; } || \
		echo "note: chromium is not installed (apt-get install chromium): the browser tests are skipped"

# JupyterHub's proxy from npm (it speaks the WebSocket subprotocols JupyterLab's kernels ask for), into .venv/node;
# without Node, the hub uses the Python configurable-http-proxy that `make setup` installs.
hub-proxy: $(STAMP)
	@test -x $(VENV)/node/node_modules/.bin/configurable-http-proxy || ! command -v npm >/dev/null 2>&1 || \
		npm install --prefix $(VENV)/node --no-audit --no-fund --silent configurable-http-proxy >/dev/null 2>&1 || \
		echo "note: npm could not install configurable-http-proxy: the hub uses the Python one"

# A class on this machine (see README, "A class on a hub"): JupyterHub on 127.0.0.1:$(PORT), people from $(ROSTER).
PORT ?= 8000
ROSTER ?= roster.txt
hub: setup hub-proxy
	$(PY) -m tlcourse hub --roster $(ROSTER) --port $(PORT)

test: lint setup sandbox chromium hub-proxy
	$(PY) -m pytest

lab: setup
	$(VENV)/bin/jupyter lab

expected: setup
	$(PY) -m tlcourse expected

# Wall time and peak memory of every notebook and experiment against the course's budgets (see tlcourse/classroom/benchmark.py).
benchmark: setup
	$(PY) -m tlcourse benchmark

# The whole test command as CI runs it (.ci/run in a fresh clone of HEAD, installs included) against its budget.
benchmark-tests: setup
	$(PY) -m tlcourse benchmark --no-notebooks --no-experiments --test-command --output benchmarks/results/test-command

# Grading state: grades, submissions and what was made from them. `make clean` never touches it.
GRADING_STATE := release submitted autograded feedback gradebook.db

clean:
	rm -rf executed .pytest_cache
	@echo "make clean keeps the grading state ($(GRADING_STATE)); make clean-grades removes it"

# Removes the grading state after asking (on a terminal), or without asking with FORCE=1.
clean-grades:
	@present="$$(for p in $(GRADING_STATE); do [ -e "$$p" ] && printf '%s ' "$$p"; done)"; \
	if [ -z "$$present" ]; then echo "make clean-grades: no grading state here ($(GRADING_STATE))"; exit 0; fi; \
	echo "make clean-grades removes the grading state: $$present"; \
	if [ "$(FORCE)" != 1 ]; then \
		if [ ! -t 0 ]; then echo "make clean-grades: not removed (no terminal to ask); run make clean-grades FORCE=1 to remove it"; exit 1; fi; \
		read -r -p "Delete these grades and submissions for good? [y/N] " answer; \
		case "$$answer" in y|Y|yes) ;; *) echo "make clean-grades: kept"; exit 0;; esac; \
	fi; \
	rm -rf $$present && echo "make clean-grades: removed $$present"
