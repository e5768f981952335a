# The two commands: `make run` and `make test`. Both install what is missing first.
# Downloads are cached under .cache/ (pip, Maven, Kafka jars) so a second run is fast.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell sha256sum pyproject.toml | cut -c1-12)
export PIP_CACHE_DIR := $(CURDIR)/.cache/pip
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: run test drill storm soak bench lint system-deps install jars clean

run: install jars
	$(VENV)/bin/hookline run --config examples/hookline.yaml

# Two workers share the session's Kafka and Temporal (tests/conftest.py). On 2 cores the suite
# is bound by CPU (Temporal, Kafka and the tests' own processes): one process took 978 s, two
# 586-724 s, three 503-800 s, and at three the longest test (a storm of 1,000 runs) slowed to
# 290 s. loadgroup: one test at a time to whichever worker is free, long ones first (marker
# `long`), the drills together on one worker (they share a stack of their own).
TEST_WORKERS ?= 2
# Helm's Go build (minutes on a fresh machine) runs beside pip, Maven and the tests, at the
# lowest CPU priority, in a process group of its own: the chart's tests come last and wait for
# it (tests/deploy/test_helm_chart.py), and it is stopped when the tests end.
HELM_BUILD_PID := $(CURDIR)/.cache/helm-build.pid
# Once the tests pass, the ingest benchmarks print their figures (about 2 minutes: instructions
# per request under callgrind, then requests/s in the short form): every machine that runs
# `make test` (CI's too) measures the gateway against the bare handler, as issue 18 asks
# ("wherever it is measured"). Figures only: nothing fails on them.
INGEST_FIGURES ?= 1
test:
	@mkdir -p .cache; if [ ! -f "$(HELM_STAMP)" ]; then \
	  echo "building Helm in the background (.cache/helm-build.log)"; \
	  setsid sh -c 'echo $$$$ > "$(HELM_BUILD_PID)"; nice -n 19 $(MAKE) --no-print-directory helm; rm -f "$(HELM_BUILD_PID)"' > .cache/helm-build.log 2>&1 & \
	fi; \
	$(MAKE) --no-print-directory install jars && $(VENV)/bin/pytest -n $(TEST_WORKERS) --dist loadgroup --durations=25; status=$$?; \
	if [ -f "$(HELM_BUILD_PID)" ]; then kill -- -$$(cat "$(HELM_BUILD_PID)") 2>/dev/null; rm -f "$(HELM_BUILD_PID)"; fi; \
	if [ $$status -eq 0 ] && [ "$(INGEST_FIGURES)" != 0 ]; then \
	  echo; echo "ingest on this machine: $$(nproc) cores,$$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"; \
	  echo "(figures, not tests; INGEST_FIGURES=0 skips them)"; \
	  for bench in ingest_instructions.py "ingest.py --no-kinds --rounds 2"; do \
	    $(PY) bench/$$bench 2> .cache/ingest-figures.log \
	      || { echo "bench/$$bench failed (exit $$?); the tests passed"; tail -n 15 .cache/ingest-figures.log; }; \
	  done; \
	fi; \
	exit $$status

# Every part of the stack killed (and frozen) at every moment, three rounds; `make test` runs a short drill.
drill: install jars
	HOOKLINE_DRILL=full HOOKLINE_DRILL_ROUNDS=$${HOOKLINE_DRILL_ROUNDS:-3} $(VENV)/bin/pytest tests/drill

# A burst of 10,000 alerts, and a 10-minute soak at 80 % of the measured maximum rate.
storm: install jars
	$(PY) bench/storm.py

soak: install jars
	$(PY) bench/soak.py

bench: install jars
	$(PY) bench/matching.py
	$(PY) bench/hostile.py
	$(PY) bench/ingest.py
	$(PY) bench/ingest_instructions.py
	$(PY) bench/e2e.py
	$(PY) bench/spawn.py
	$(PY) bench/runs.py
	$(PY) bench/runs.py --local-pools shell --interpreter
	$(PY) bench/flow.py

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy hookline gateway triggers worker schemas bench
	$(VENV)/bin/pytest -q -p no:cacheprovider tests/unit/test_layers.py  # the layering contract

# Steps and servers start through this small wrapper, which sets their parent-death signal
# (hookline/processes.py); where it is missing they start through setpriv, which costs about
# 0.5 ms of CPU more each (bench/spawn.py).
DIE_WITH_PARENT := $(VENV)/bin/hookline-die-with-parent

install: system-deps $(STAMP) $(DIE_WITH_PARENT)

$(DIE_WITH_PARENT): hookline/native/die_with_parent.c | $(STAMP)
	cc -O2 -static -Wall -Wextra -Werror -o $@ $<

# Java 17 and Maven run the Kafka broker; python3-venv makes the virtualenv. The runners' real
# back ends: bubblewrap (sandbox), podman + runc (container; tests import a busybox-static
# image), openssh-server/-client (ssh). The real Alertmanager the ingress is tested against, and
# wrk and valgrind (bench/ingest_instructions.py) for `make bench`; chromium, which Playwright drives in the console's browser tests; Prometheus' promtool (package prometheus) checks the alerting rules; gcc and libc6-dev build the
# parent-death wrapper (statically linked). Installed with apt-get only when missing (CI and fresh
# machines of this kind run as root).
system-deps:
	@missing=""; \
	command -v java >/dev/null || missing="$$missing openjdk-17-jre-headless"; \
	command -v mvn >/dev/null || missing="$$missing maven"; \
	$(PYTHON) -c "import venv, ensurepip" 2>/dev/null || missing="$$missing python3-venv"; \
	command -v bwrap >/dev/null || missing="$$missing bubblewrap"; \
	command -v podman >/dev/null || missing="$$missing podman"; \
	test -x /usr/sbin/runc -o -x /usr/bin/runc || missing="$$missing runc"; \
	dpkg -s busybox-static >/dev/null 2>&1 || missing="$$missing busybox-static"; \
	test -x /usr/sbin/sshd || missing="$$missing openssh-server"; \
	command -v ssh-keygen >/dev/null || missing="$$missing openssh-client"; \
	command -v prometheus-alertmanager >/dev/null || missing="$$missing prometheus-alertmanager"; \
	command -v wrk >/dev/null || missing="$$missing wrk"; \
	command -v callgrind_control >/dev/null || missing="$$missing valgrind"; \
	command -v promtool >/dev/null || missing="$$missing prometheus"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v cc >/dev/null || missing="$$missing gcc"; \
	dpkg -s libc6-dev >/dev/null 2>&1 || missing="$$missing libc6-dev"; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

# system-deps first (python3-venv), also when make runs targets side by side.
$(STAMP): pyproject.toml | system-deps
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $@

jars: $(STAMP)
	$(PY) -c "from pathlib import Path; from hookline.stack import ensure_kafka_jars; print('Kafka jars:', ensure_kafka_jars(Path('.cache')))"

clean:
	rm -rf .data

# Targets of their own parts (the cluster, the Helm chart) live in mk/*.mk.
-include mk/*.mk
