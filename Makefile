# Two entry points for a fresh Debian machine: `make demo` and `make test`.
# Each does its own set-up: Debian packages when missing, a virtualenv, the project.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
APT_PACKAGES := docker-registry skopeo gnupg podman python3-venv

.PHONY: setup system-deps demo test lint bench bench-quick clean

system-deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

# ferry's own modules byte-compiled, as a pip install leaves them: an editable install under
# PYTHONDONTWRITEBYTECODE would otherwise compile ~90 modules from source at every start (0.1 s).
setup: system-deps $(VENV)/.installed
	@$(PY) -m compileall -q src >/dev/null

demo: setup
	$(PY) -m demo

# Tests mostly wait on registries and child processes: 3 workers on 2 cores, each handed whole modules (a
# module's seeded server is built once; tests/conftest.py puts those modules first). TEST_WORKERS=0: one process.
TEST_WORKERS ?= 3
test: setup
	$(VENV)/bin/ruff check src tests bench demo
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

bench: setup
	$(PY) -m bench.run

# One quick case, one run each (default: the WAN case, small, at 80 ms); CASE=big etc. for another.
CASE ?= wan
QUICK_ARGS ?= $(if $(filter wan,$(CASE)),--rtts 80 --wan-big-mb 50 --wan-bulk 2x3x2)
bench-quick: setup
	$(PY) -m bench.run --case $(CASE) --reps 1 $(QUICK_ARGS)

clean:
	rm -rf $(VENV) build dist src/*.egg-info
