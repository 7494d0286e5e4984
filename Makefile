# webmg-ops: thin targets; the logic lives in the Python package.
#   make demo    set everything up, start the lab, run a maintenance cycle
#   make test    set everything up and run the whole suite

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The lab's vault password (written by `lab up`) decrypts the lab clients' vaults, and
# the lab's ledger signing key signs the checkpoints of run logs and reports: each
# command gets them when they exist and no other is set (looked up when the command
# runs, so a lab started by the same recipe counts).
LAB_VAULT := $(CURDIR)/var/lab/vault-password
LAB_SIGNING_KEY := $(CURDIR)/var/lab/identity/ledger-signing.key
LAB_ENV := env $$([ -z "$$WEBMG_VAULT_PASSWORD_FILE" ] && [ -f $(LAB_VAULT) ] && echo WEBMG_VAULT_PASSWORD_FILE=$(LAB_VAULT)) \
	$$([ -z "$$WEBMG_SIGNING_KEY" ] && [ -f $(LAB_SIGNING_KEY) ] && echo WEBMG_SIGNING_KEY=$(LAB_SIGNING_KEY))
WEBMG := $(LAB_ENV) $(BIN)/webmg-ops
# A run records its operator (WEBMG_OPERATOR, else git's user.name) and is refused
# without one. The demo and the benchmarks, which run for whoever starts them, fall back
# to naming themselves.
SELF_NAMED = WEBMG_OPERATOR="$${WEBMG_OPERATOR:-$$(git config user.name || echo 'make $@')}"
STAMP := $(VENV)/.installed
LOCK_VENV := $(CURDIR)/var/lock-venv
DEMO_CLIENT ?= atelier-nord
TEAM_DB ?= webmg
# Workers for the tests that need no lab (`make test`): one per core.
TEST_WORKERS ?= auto

# Debian packages: Python, what the rehearsal lab and the backups need, and strace
# (the leak tests record every command line through it).
APT_PACKAGES := python3 python3-venv python3-pip git make \
	mmdebstrap systemd-container iproute2 nftables \
	dpkg-dev apt-utils gnupg zstd openssh-client restic sqlite3 ca-certificates \
	postgresql util-linux passwd strace jq \
	libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core

.PHONY: help setup apt-packages lock test test-fast mutants lint demo bench run check update harden backup diagnose compliance client-new clients validate due policy reference \
	submit worker queue team-db \
	ledger-verify monitor drill drills-due lab-up lab-down lab-status report

help:
	@grep -E '^## ' Makefile | sed 's/^## //'

## setup          install Debian packages (when missing) and the virtual environment
setup: apt-packages $(STAMP)

apt-packages:
	@# Lock::Timeout: wait for another apt (a second checkout's setup, unattended-upgrades), not fail on its lock.
	@missing=$$(for p in $(APT_PACKAGES); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed$$' || echo $$p; \
	done); \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" != 0 ]; then echo "missing Debian packages (install as root): $$missing" >&2; exit 4; fi; \
		echo "installing Debian packages: $$missing"; \
		apt-get -o DPkg::Lock::Timeout=300 update -q && DEBIAN_FRONTEND=noninteractive \
			apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends $$missing; \
	fi

# Every package, the dev tools and the build backend included, comes from the
# hash-pinned lock: a fresh machine gets exactly what CI tested. The project
# itself is then installed without resolving anything again.
$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --require-hashes -r requirements.lock
	$(BIN)/pip install -q --no-deps --no-build-isolation -e .
	touch $@

## lock           re-pin requirements.lock after a change to pyproject.toml (UPGRADE=pkg moves one)
lock:
	$(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/pip install -q pip-tools
	$(LOCK_VENV)/bin/pip-compile -q --generate-hashes --extra dev --build-deps-for editable \
		--allow-unsafe --strip-extras --no-emit-index-url $(if $(UPGRADE),--upgrade-package $(UPGRADE)) \
		-o requirements.lock pyproject.toml
	rm -rf $(LOCK_VENV)

## test           lint, type-check and run the whole test suite (needs root for the lab)
test: setup lint
	@# The tests bring up their own lab on the lab's range: stop this checkout's demo lab first.
	-@$(WEBMG) lab down >/dev/null 2>&1
	@# Two phases. The tests that need no lab share nothing but this machine: one worker
	@# per core. The lab's tests then run one at a time on the one lab. Both phases run
	@# even when the first fails, and the target fails if either did. The slowest tests of
	@# each phase are listed at its end: where the suite's time goes.
	@# Each phase leaves its JUnit file in build/tests: `make bench` reports the times.
	@rm -f build/tests/not-lab.xml build/tests/lab.xml; status=0; \
	$(BIN)/pytest -q -n $(TEST_WORKERS) -m "not lab" --durations=10 \
		--junitxml=build/tests/not-lab.xml || status=$$?; \
	$(BIN)/pytest -q -m lab --durations=15 --junitxml=build/tests/lab.xml || status=$$?; \
	exit $$status

## test-fast      the inner loop: every test but those of the lab and of outside tools (under a minute)
test-fast: setup
	@# These tests share nothing (no lab, no outside tool): one worker per core.
	$(BIN)/pytest -q -n auto -m "not lab and not tools"

## mutants        mutation testing of the modules the promises rest on; a score per module (floor 90 %)
mutants: setup
	rm -rf mutants
	$(BIN)/mutmut run --max-children 2
	$(BIN)/mutmut results --all true | $(BIN)/python ci/mutation_score.py

## lint           ruff, mypy, the import contracts, yamllint and ansible-lint
lint: setup
	$(BIN)/ruff check webmg_ops tests bench
	$(BIN)/ruff format --check webmg_ops tests bench
	$(BIN)/mypy webmg_ops bench
	$(BIN)/lint-imports --no-cache
	$(BIN)/yamllint -s inventories playbooks roles .github ci
	$(BIN)/ansible-lint -q playbooks roles

## demo           start the lab and run a maintenance cycle (check, update, harden) for the demo client
demo: setup
	$(SELF_NAMED) $(WEBMG) lab up
	$(SELF_NAMED) $(WEBMG) validate
	$(SELF_NAMED) $(WEBMG) due $(DEMO_CLIENT)
	$(SELF_NAMED) $(WEBMG) ledger verify
	@echo "The lab stays up for you to explore (make lab-status, make lab-down)."
	$(SELF_NAMED) $(WEBMG) diagnose $(DEMO_CLIENT) --reason "demo: scoping diagnostic before any change"
	$(SELF_NAMED) $(WEBMG) run $(DEMO_CLIENT) update --reason "demo: monthly security updates"
	$(SELF_NAMED) $(WEBMG) run $(DEMO_CLIENT) harden --reason "demo: security baseline, compliance before and after"
	$(SELF_NAMED) $(WEBMG) run agency target --reason "demo: the agency's backup target, append-only per host"
	$(SELF_NAMED) $(WEBMG) run $(DEMO_CLIENT) backup --reason "demo: verified backup of files and database"
	$(SELF_NAMED) $(WEBMG) drill $(DEMO_CLIENT) --reason "demo: restore drill, files and rows verified, RPO and RTO"
	@# The demo's work is all in the current month: its report, still in progress.
	$(SELF_NAMED) $(WEBMG) report $(DEMO_CLIENT) --period $$(date -u +%Y-%m)

## bench          benchmarks (ratios measured side by side; not part of the tests; root for the lab)
bench: setup
	$(BIN)/python bench/suite.py
	$(BIN)/python bench/startup.py
	$(BIN)/python bench/events.py
	$(BIN)/python bench/ledger.py
	$(BIN)/python bench/tick.py
	$(BIN)/python bench/scale.py
	$(BIN)/python bench/growth.py
	nice -n 19 $(BIN)/python bench/monitor.py
	$(BIN)/python bench/samples.py
	$(LAB_ENV) $(BIN)/python bench/report.py
	$(SELF_NAMED) $(LAB_ENV) $(BIN)/python bench/overhead.py
	$(SELF_NAMED) $(LAB_ENV) $(BIN)/python bench/drill.py
	$(LAB_ENV) $(BIN)/python bench/throughput.py

# What run, update and harden pass on: CHECK=1 (dry run), REASON="...", TICKET=id,
# EMERGENCY=1 (outside windows and in freezes; needs REASON) and LIMIT=pattern (hosts).
RUN_FLAGS = $(if $(CHECK),--check) $(if $(REASON),--reason "$(REASON)") \
	$(if $(TICKET),--ticket "$(TICKET)") $(if $(EMERGENCY),--emergency) \
	$(if $(LIMIT),--limit "$(LIMIT)")

## run            run ACTION=y for CLIENT=x (CHECK=1 dry run; REASON="...", TICKET=id, EMERGENCY=1, LIMIT=hosts)
run: setup
	@test -n "$(CLIENT)" -a -n "$(ACTION)" || { echo "usage: make run CLIENT=name ACTION=action" >&2; exit 2; }
	$(WEBMG) run $(CLIENT) $(ACTION) $(RUN_FLAGS)

## check          read-only check of CLIENT=x's hosts, recorded with a run log
check: setup
	@test -n "$(CLIENT)" || { echo "usage: make check CLIENT=name" >&2; exit 2; }
	$(WEBMG) run $(CLIENT) check $(if $(REASON),--reason "$(REASON)")

## update         controlled updates of CLIENT=x in health-gated batches (CHECK=1: dry run; as run: TICKET, EMERGENCY, LIMIT)
update: setup
	@test -n "$(CLIENT)" || { echo "usage: make update CLIENT=name [CHECK=1]" >&2; exit 2; }
	$(WEBMG) run $(CLIENT) update $(RUN_FLAGS)

## harden         security baseline on CLIENT=x, compliance before/after (CHECK=1: drift check; as run: TICKET, EMERGENCY, LIMIT)
harden: setup
	@test -n "$(CLIENT)" || { echo "usage: make harden CLIENT=name [CHECK=1]" >&2; exit 2; }
	$(WEBMG) run $(CLIENT) harden $(RUN_FLAGS)

## diagnose       scoping diagnostic of CLIENT=x (or a prospect): fit, level, action plan
diagnose: setup
	@test -n "$(CLIENT)" || { echo "usage: make diagnose CLIENT=name" >&2; exit 2; }
	$(WEBMG) diagnose $(CLIENT) $(if $(REASON),--reason "$(REASON)")

## backup         verified restic backup of CLIENT=x's hosts (CHECK=1: dry run)
backup: setup
	@test -n "$(CLIENT)" || { echo "usage: make backup CLIENT=name [CHECK=1]" >&2; exit 2; }
	$(WEBMG) run $(CLIENT) backup $(if $(CHECK),--check) $(if $(REASON),--reason "$(REASON)")

## compliance     read-only compliance check of CLIENT=x against the hardening controls
compliance: setup
	@test -n "$(CLIENT)" || { echo "usage: make compliance CLIENT=name" >&2; exit 2; }
	$(WEBMG) compliance $(CLIENT)

## client-new     a new client's folder: CLIENT=x SECTOR=s [LEVEL=l]; vault password from WEBMG_VAULT_PASSWORD_FILE
# Never the lab's vault password: a real client's vault is encrypted with the agency's own.
client-new: setup
	@test -n "$(CLIENT)" -a -n "$(SECTOR)" || { echo "usage: make client-new CLIENT=name SECTOR=sector [LEVEL=level]" >&2; exit 2; }
	$(BIN)/webmg-ops client new $(CLIENT) --sector $(SECTOR) $(if $(LEVEL),--level $(LEVEL))

## clients        list the clients
clients: setup
	$(WEBMG) clients

## validate       validate every client contract and inventory
validate: setup
	$(WEBMG) validate

## submit         queue ACTION=y for CLIENT=x for a worker (AT=time; as run: CHECK, REASON, TICKET, EMERGENCY, LIMIT)
submit: setup
	@test -n "$(CLIENT)" -a -n "$(ACTION)" || { echo "usage: make submit CLIENT=name ACTION=action [AT=time]" >&2; exit 2; }
	$(WEBMG) submit $(CLIENT) $(ACTION) $(RUN_FLAGS) $(if $(AT),--at "$(AT)")

## worker         carry out queued runs until stopped (CONCURRENCY=n; QUEUES=a,b; DRAIN=1 stops when none is left; SCHEDULE=1 and MONITOR=1 add the periodic work)
worker: setup
	$(WEBMG) worker $(if $(CONCURRENCY),--concurrency $(CONCURRENCY)) $(if $(QUEUES),--queues "$(QUEUES)") $(if $(DRAIN),--drain) $(if $(SCHEDULE),--schedule) $(if $(MONITOR),--monitor)

## queue          the queue's runs: queued, running, failed and done
queue: setup
	$(WEBMG) queue

## team-db        start this machine's PostgreSQL (Debian's) and make the team's database TEAM_DB (default webmg); prints its URL
team-db: setup
	@cluster=$$(pg_lsclusters -h 2>/dev/null | awk 'NR == 1 {print $$1, $$2}'); \
	if [ -z "$$cluster" ]; then echo "no PostgreSQL cluster on this machine (Debian's postgresql package makes one)" >&2; exit 4; fi; \
	pg_ctlcluster $$cluster status >/dev/null 2>&1 || pg_ctlcluster $$cluster start; \
	me=$$(id -un); \
	runuser -u postgres -- psql -qtAc "SELECT 1 FROM pg_roles WHERE rolname = '$$me'" | grep -q 1 \
		|| runuser -u postgres -- createuser --superuser "$$me"; \
	runuser -u postgres -- psql -qtAc "SELECT 1 FROM pg_database WHERE datname = '$(TEAM_DB)'" | grep -q 1 \
		|| runuser -u postgres -- createdb --owner "$$me" "$(TEAM_DB)"; \
	echo "export WEBMG_LEDGER_URL='postgresql+psycopg:///$(TEAM_DB)?host=/var/run/postgresql'"

## due            next windows and the actions due, per client
due: setup
	$(WEBMG) due

## policy         effective policy of CLIENT=x
policy: setup
	@test -n "$(CLIENT)" || { echo "usage: make policy CLIENT=name" >&2; exit 2; }
	$(WEBMG) policy $(CLIENT)

## drill          restore drill of CLIENT=x: restore into scratch, verify files and databases, RPO/RTO
drill: setup
	@test -n "$(CLIENT)" || { echo "usage: make drill CLIENT=name" >&2; exit 2; }
	$(WEBMG) drill $(CLIENT) $(if $(SNAPSHOT),--snapshot $(SNAPSHOT))

## drills-due     the clients whose restore drill is due (RUN=1: run them, exit 1 if one fails)
drills-due: setup
	$(WEBMG) drills-due $(if $(RUN),--run)

## monitor        probe the health checks of CLIENT=x (every monitored client without it) until stopped; ONCE=1 probes once
monitor: setup
	$(WEBMG) monitor $(CLIENT) $(if $(ONCE),--once)

## report         CLIENT=x's report (HTML + PDF) for PERIOD=2026-11 or 2026-Q4 (default: the last complete one); PUBLISH=1 uploads it and mails its links
report: setup
	@test -n "$(CLIENT)" || { echo "usage: make report CLIENT=name [PERIOD=2026-11] [PUBLISH=1]" >&2; exit 2; }
	$(WEBMG) report $(CLIENT) $(if $(PERIOD),--period $(PERIOD)) $(if $(PUBLISH),--publish)

## ledger-verify  recompute the ledger's hash chain
ledger-verify: setup
	$(WEBMG) ledger verify

## lab-up         start the rehearsal lab (builds its base on first use)
lab-up: setup
	$(WEBMG) lab up

## lab-status     show the rehearsal lab's hosts
lab-status: setup
	$(WEBMG) lab status

## lab-down       stop the rehearsal lab and remove what it made
lab-down: setup
	$(WEBMG) lab down

## reference      regenerate the contract reference in README.md from the schema
reference: setup
	$(BIN)/python -c 'from pathlib import Path; from webmg_ops.config.reference import replace_reference as r; p = Path("README.md"); p.write_text(r(p.read_text()))'
