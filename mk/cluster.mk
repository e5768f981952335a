# The production topology on this machine (docs/cluster.md): three Kafka brokers (KRaft), the
# Temporal server proper (frontend, history, matching, worker) on PostgreSQL, two gateways, two
# triggers and two workers. `make cluster` runs it until Ctrl-C; `make cluster-drill` kills its
# parts under a load of 1,000 alerts (tests/cluster) and prints what it saw.
#
# The Temporal server and its SQL tool are built from their Go module by hookline.cluster
# (ensure_temporal_server) into .cache/temporal/<version>/bin, the module and build caches under
# .cache/go (shared with mk/helm.mk): about 5 minutes on 2 cores the first time, nothing after.
# The build takes both cores and the cluster most of the machine, so both hold the suite's lock,
# which the test sessions that start Kafka and Temporal take too (tests/conftest.py).
SUITE_LOCK ?= $(or $(HOOKLINE_SUITE_LOCK),/tmp/hookline-suite.lock)
TEMPORAL_SERVER_VERSION := $(shell sed -n 's/^TEMPORAL_SERVER_VERSION = "\(.*\)"/\1/p' hookline/cluster.py)
TEMPORAL_SERVER_STAMP := .cache/temporal/$(TEMPORAL_SERVER_VERSION)/bin/.complete

.PHONY: cluster cluster-drill cluster-bench cluster-deps temporal-server

# PostgreSQL (Debian's) for the Temporal server, installed with apt-get only when missing; Go is
# on machines of this kind (Debian's golang is too old for the Temporal server).
cluster-deps:
	@command -v go >/dev/null || { echo "Go is needed to build the Temporal server: install Go 1.26 or newer"; exit 1; }
	@if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then \
	  echo "installing: postgresql"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql; \
	fi

temporal-server: install cluster-deps $(TEMPORAL_SERVER_STAMP)

$(TEMPORAL_SERVER_STAMP):
	flock $(SUITE_LOCK) $(PY) -c "from pathlib import Path; from hookline.cluster import ensure_temporal_server; \
	  print('Temporal server:', ensure_temporal_server(Path('.cache'), quiet=False))"

cluster: install jars temporal-server
	flock $(SUITE_LOCK) $(PY) -m hookline.cluster

# The drill's pytest session takes the suite's lock itself, like every session that starts servers.
cluster-drill: install jars temporal-server
	HOOKLINE_CLUSTER=1 $(VENV)/bin/pytest -p no:cacheprovider tests/cluster

# bench/runs.py against the Temporal server proper on PostgreSQL (docs/performance.md), steps
# queued and local; each run holds the suite's lock, as the cluster does, so that no test session
# shares the machine with it.
cluster-bench: install jars temporal-server
	flock $(SUITE_LOCK) $(PY) bench/runs.py --temporal postgres
	flock $(SUITE_LOCK) $(PY) bench/runs.py --temporal postgres --local-pools shell --interpreter
