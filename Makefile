# esia-onboard: the two commands of the README are `make demo` and `make test`.
# Both are idempotent and set up what is missing (apt packages, .venv, the lab
# image) on a fresh Debian 12 machine, run as root.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV       := .venv
BIN        := $(VENV)/bin
PYTHON     ?= python3
STAMPS     := .cache/stamps
APT_PACKAGES := podman runc debootstrap bind9 bind9-dnsutils libengine-gost-openssl openssl curl python3-venv \
                chromium chromium-driver prometheus pebble

export CONTAINERS_CONF := $(CURDIR)/lab/containers.conf
export PATH := $(CURDIR)/$(BIN):$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export PYTHONPATH := $(CURDIR)

.PHONY: help setup apt venv demo test lint unit integration molecule lab-image lab-up lab-down lab-status bench docs clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

setup: apt venv ## Install apt packages and the Python venv (idempotent)

apt: $(STAMPS)/apt
$(STAMPS)/apt: Makefile
	@mkdir -p $(STAMPS)
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "apt: installing $$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi
	@touch $@

venv: $(STAMPS)/venv
# requirements.txt: what the toolkit runs with; requirements-dev.txt: the
# lint, test and Molecule tools. The venv gets both.
$(STAMPS)/venv: requirements.txt requirements-dev.txt | $(STAMPS)/apt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -r requirements.txt -r requirements-dev.txt
	@mkdir -p $(STAMPS) && touch $@

lab-image: setup ## Build the lab's Debian 12 image (only when its recipe changed)
	$(BIN)/python -m lab image

lab-up: setup ## Start the lab: BIND9 on 127.0.0.1 and the portal container
	$(BIN)/python -m lab up

lab-down: ## Stop the lab
	$(BIN)/python -m lab down

lab-status: ## Show what of the lab runs
	$(BIN)/python -m lab status

demo: lab-up ## Set up, start the lab and run site.yml against it
	$(BIN)/ansible-playbook site.yml -i inventories/lab

lint: setup ## yamllint, ansible-lint (production profile), ruff
	$(BIN)/yamllint --strict .
	$(BIN)/ansible-lint --offline --profile production --nocolor -q
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

unit: setup ## Python unit tests
	$(BIN)/pytest tests/unit

# Each test module starts its own containers, BIND9 and ports, so modules run
# two at a time (podman and ansible wait on I/O as much as on the 2 cores).
integration: setup lab-image ## Integration tests (real BIND9, GOST engine, podman hosts)
	$(BIN)/pytest -n 2 --dist loadfile --durations=15 tests/integration

# Molecule gets a BIND9 of its own on a free port, its state in a fresh
# directory (never the demo lab's 15353 and .lab/), stopped when Molecule ends.
molecule: lab-image ## Molecule: converge site.yml on a lab container, idempotence, verify
	@export LAB_STATE=$$(mktemp -d /tmp/esia-molecule.XXXXXX) LAB_BIND_PORT=$$($(BIN)/python -m lab free-port); \
	trap '$(BIN)/python -m lab bind-down; rm -rf "$$LAB_STATE"' EXIT; \
	$(BIN)/python -m lab bind-up --reset | grep '^bind'; \
	LAB_IMAGE=$$($(BIN)/python -m lab image) $(BIN)/molecule test

test: setup lint unit integration molecule ## Every test (what .ci/run calls)

bench: setup lab-image ## Benchmark rows against a 60-task baseline of the same run (not a test; ~15-20 min; BENCH_ARGS="--rows warm --fleet 0")
	$(BIN)/python tools/benchmark.py $(BENCH_ARGS)

docs: setup ## Re-render docs/scopes.md and the role READMEs' variable tables (from meta/argument_specs.yml)
	$(BIN)/python -m filter_plugins.esia > docs/scopes.md
	$(BIN)/python tools/role_docs.py

clean: lab-down ## Stop the lab and remove local state (keeps .venv)
	rm -rf .lab .cache/facts artifacts/*/
