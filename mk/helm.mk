# The Helm binary the chart's tests run (tests/deploy/test_helm_chart.py), built from its Go module
# into .cache/bin: Debian has no helm package. The first build takes a few minutes on 2 cores;
# the module and build caches stay under .cache/go, so a rebuild is quick.
HELM_VERSION := v3.22.0
# The Kubernetes version Helm assumes without a cluster (`helm template`, `helm lint`): the
# official binaries set it from the client-go they build with (v0.37 → 1.37); a plain
# `go install` would leave Helm's fallback, 1.20.
HELM_KUBE_MINOR := 37
HELM := $(CURDIR)/.cache/bin/helm
# Go is on these machines, not always on PATH.
GO ?= $(shell command -v go 2>/dev/null || echo /usr/local/go/bin/go)
HELM_STAMP := $(CURDIR)/.cache/bin/.helm-$(HELM_VERSION)
HELM_LDFLAGS := -s -w -X helm.sh/helm/v3/internal/version.version=$(HELM_VERSION) \
  -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$(HELM_KUBE_MINOR) \
  -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$(HELM_KUBE_MINOR)

.PHONY: helm helm-test

helm: $(HELM_STAMP)

$(HELM_STAMP):
	@test -x "$(GO)" || { echo "make helm: Go is needed to build Helm (set GO=/path/to/go)"; exit 1; }
	mkdir -p $(CURDIR)/.cache/bin
	GOBIN=$(CURDIR)/.cache/bin GOMODCACHE=$(CURDIR)/.cache/go/mod GOCACHE=$(CURDIR)/.cache/go/build \
	  GOFLAGS=-buildvcs=false CGO_ENABLED=0 \
	  $(GO) install -trimpath -ldflags '$(HELM_LDFLAGS)' helm.sh/helm/v3/cmd/helm@$(HELM_VERSION)
	rm -f $(CURDIR)/.cache/bin/.helm-*
	touch $@

# The chart's checks alone: lint, render with each set of values, validate against the schemas.
helm-test: install helm
	$(VENV)/bin/pytest -q -p no:cacheprovider tests/deploy/test_helm_chart.py
