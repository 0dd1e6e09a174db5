# lvs.ipvs — one command to set up and test everything, one to see it work.
.PHONY: setup test unit lab sanity lint demo ha-demo bench rolebench clean lab-up lab-down

PYTEST := .venv/bin/pytest

setup:
	scripts/setup.sh

## Everything: unit tests, lab tests in UML guests (real IPVS kernel), collection checks, sanity, release linters.
test: setup
	$(PYTEST) tests
	scripts/sanity.sh
	scripts/lint.sh

unit: setup
	$(PYTEST) tests/unit

lab: setup
	$(PYTEST) tests -m lab

sanity: setup
	scripts/sanity.sh

## ansible-lint (production profile), antsibull-docs, antsibull-changelog.
lint: setup
	scripts/lint.sh

## Boot the lab and build a NAT and a DR service with the modules; show traffic alternating.
demo: setup
	.venv/bin/python -m lab run --timeout 300 -- .venv/bin/python -m lab.demo

## Two keepalived directors, three real servers, a client: the split, then the master killed and the failover timed.
ha-demo: setup
	.venv/bin/python -m lab run --timeout 300 -- .venv/bin/python -m lab.ha_demo

## ipvs_table vs ipvsadm on the lab kernel: 100, 1,000 and 5,000 services x 10 real servers (in-process and module
## process), then as a user runs it: ansible-playbook at 1,000 and 5,000 x 10, with its profile (BENCH_SIZES, BENCH_RUNS).
bench: setup
	.venv/bin/python -m lab run --timeout 1800 -- .venv/bin/python benchmarks/ipvs_table_bench.py
	.venv/bin/python -m lab run --mem 3G --timeout 3400 -- .venv/bin/python benchmarks/playbook_bench.py
	.venv/bin/python -m lab run --timeout 1800 -- .venv/bin/python benchmarks/single_object_bench.py

## lvs.ipvs.director vs the old nat_director: a whole role run at 10 and 1,000 services x 10 real servers.
rolebench: setup
	.venv/bin/python -m lab run --timeout 3000 -- .venv/bin/python benchmarks/role_bench.py

## Lab machines (one UML guest per host, systemd, ssh) of a molecule scenario's platforms, for your own playbooks:
##   make lab-up SCENARIO=dr   prints the inventory;   make lab-down SCENARIO=dr   stops and removes them.
SCENARIO ?= dr
lab-up: setup
	.venv/bin/python -m lab.machines up --name $(SCENARIO) --scenario $(SCENARIO)

lab-down:
	.venv/bin/python -m lab.machines down --name $(SCENARIO)

clean:
	rm -rf .lab .collections .pytest_cache
