# Ringlet. `make run` runs the daemon; `make test` installs what the tests
# need (as root) and runs them all.
GO      ?= go
PKG     := github.com/neullabs/ringlet
# What 'ringlet version' says: from git, or dev outside a checkout.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse HEAD 2>/dev/null)
DIRTY   ?= $(shell test -n "$$(git status --porcelain 2>/dev/null)" && echo true || echo false)
LDFLAGS := -X $(PKG)/version.Version=$(VERSION) -X $(PKG)/version.Commit=$(COMMIT) -X $(PKG)/version.Dirty=$(DIRTY)
BIN     := bin/ringlet
# make install puts ringlet in $(DESTDIR)$(BINDIR): ~/.local/bin unless
# PREFIX (or BINDIR) says otherwise; DESTDIR is for staging a package.
PREFIX  ?= $(HOME)/.local
BINDIR  ?= $(PREFIX)/bin
# make dist builds these, static (no cgo) and without debug symbols, into
# dist/ with SHA256SUMS.
PLATFORMS ?= linux/amd64 linux/arm64 darwin/amd64 darwin/arm64

.PHONY: all build install dist run test deps node-deps dashboard-vendor check lint tidy bench fuzz clean

all: build

# No cgo: the binary is static on Linux and needs nothing from the build
# machine; -trimpath keeps the build machine's paths out of it.
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/ringlet

install: build
	install -d '$(DESTDIR)$(BINDIR)'
	install -m 0755 $(BIN) '$(DESTDIR)$(BINDIR)/ringlet'
	@echo "installed $(DESTDIR)$(BINDIR)/ringlet ($(VERSION))"
	@case ":$$PATH:" in *':$(BINDIR):'*) ;; *) test -n '$(DESTDIR)' || \
	  echo "$(BINDIR) is not on your PATH; add it: export PATH=\"$(BINDIR):\$$PATH\"";; esac

dist:
	rm -rf dist && mkdir -p dist
	@set -e; for p in $(PLATFORMS); do \
	  os=$${p%/*}; arch=$${p#*/}; out=dist/ringlet-$(VERSION)-$$os-$$arch; \
	  echo "$$out"; \
	  CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build -trimpath -ldflags '-s -w $(LDFLAGS)' -o $$out ./cmd/ringlet; \
	done
	cd dist && sha256sum ringlet-* > SHA256SUMS
	@cat dist/SHA256SUMS

# The daemon with its defaults: 127.0.0.1:8765, token created on first run.
run: build
	./$(BIN) daemon --stay-alive

# Installs missing system packages when run as root; otherwise lists them.
deps:
	@.ci/deps

# The npm packages of the client tests in test/node (the provider SDKs and
# Claude Code) and test/mcpnode (the MCP SDK and reference MCP servers), at
# the versions in their package-lock.json.
# npm ci runs again whenever a package-lock.json is newer than what is
# installed (npm's own record in node_modules/.package-lock.json).
node-deps: test/node/node_modules/.package-lock.json test/mcpnode/node_modules/.package-lock.json

test/%/node_modules/.package-lock.json: test/%/package-lock.json
	npm ci --prefix test/$* --no-audit --no-fund

# The dashboard's third-party files (uPlot, xterm.js and its fit addon), refreshed from npm at the
# version pinned in dashboard/npm/package-lock.json (npm ci checks each
# package against the lock's integrity hash) and checked against
# dashboard/assets/vendor/SHA256SUMS. The copies are committed and
# embedded in the binary: building, running and CI need no network. To
# move to a new version: change dashboard/npm/package.json, run
# 'npm install --prefix dashboard/npm --ignore-scripts', then
# 'make dashboard-vendor SUMS=update' and review the diff.
DASH_VENDOR := dashboard/assets/vendor
dashboard-vendor:
	npm ci --prefix dashboard/npm --ignore-scripts --no-audit --no-fund
	cp dashboard/npm/node_modules/uplot/dist/uPlot.iife.min.js dashboard/npm/node_modules/uplot/dist/uPlot.min.css $(DASH_VENDOR)/
	cp dashboard/npm/node_modules/uplot/LICENSE $(DASH_VENDOR)/uPlot.LICENSE
	cp dashboard/npm/node_modules/@xterm/xterm/lib/xterm.js dashboard/npm/node_modules/@xterm/xterm/css/xterm.css $(DASH_VENDOR)/
	cp dashboard/npm/node_modules/@xterm/xterm/LICENSE $(DASH_VENDOR)/xterm.LICENSE
	cp dashboard/npm/node_modules/@xterm/addon-fit/lib/addon-fit.js $(DASH_VENDOR)/
	cp dashboard/npm/node_modules/@xterm/addon-fit/LICENSE $(DASH_VENDOR)/addon-fit.LICENSE
	@if [ '$(SUMS)' = update ]; then cd $(DASH_VENDOR) && sha256sum uPlot.iife.min.js uPlot.min.css uPlot.LICENSE \
		xterm.js xterm.css xterm.LICENSE addon-fit.js addon-fit.LICENSE > SHA256SUMS; fi
	cd $(DASH_VENDOR) && sha256sum -c SHA256SUMS

check:
	@test -z "$$(gofmt -l .)" || { echo "gofmt needed on:"; gofmt -l .; exit 1; }
	$(GO) vet ./...
	GOOS=darwin $(GO) build ./...

# golangci-lint at the version pinned in tools/go.mod (a module of its
# own, so its dependencies stay out of Ringlet's), with .golangci.yml.
bin/golangci-lint: tools/go.mod tools/go.sum
	$(GO) -C tools build -o ../bin/golangci-lint github.com/golangci/golangci-lint/v2/cmd/golangci-lint

lint: bin/golangci-lint
	bin/golangci-lint run --allow-parallel-runners ./...

# go mod tidy must have nothing to change, here or in tools/.
tidy:
	$(GO) mod tidy -diff
	$(GO) -C tools mod tidy -diff
	$(GO) -C tools/otelcol mod tidy -diff

# Lint, tidy and the dependency test (internal/deptest) run with the rest.
test: deps node-deps check lint tidy bin/otelcol
	RINGLET_OTELCOL=$(CURDIR)/bin/otelcol $(GO) test -race -count=1 -timeout 20m ./...

# The OpenTelemetry Collector the export tests send to (test/otel_test.go),
# from tools/otelcol: a module of its own, so the collector's
# dependencies stay out of Ringlet's go.mod.
bin/otelcol: tools/otelcol/go.mod tools/otelcol/go.sum tools/otelcol/main.go
	$(GO) -C tools/otelcol build -o ../../bin/otelcol .

# Each benchmark measures its baseline in the same run and prints the ratio.
bench: deps
	$(GO) test -run '^$$' -bench . -benchtime 2s -count 1 ./gateway
	$(GO) test -run '^$$' -bench 'Redactor|NewSecrets|AnswerUsage' -count 1 ./provider
	$(GO) test -run '^$$' -bench 'Append' -benchtime 50000x -count 1 ./audit/auditlog
	$(GO) test -run '^$$' -bench 'RawCommit' -benchtime 3000x -count 3 ./audit/auditlog
	$(GO) test -run '^$$' -bench 'ToolSearch' -count 3 ./mcp
	$(GO) test -run '^$$' -bench 'View' -benchtime 300000x -count 3 ./internal/perprofile
	$(GO) test -run '^$$' -bench 'Usage' -benchtime 1x -count 1 ./audit/auditlog
	$(GO) test -run '^$$' -bench 'AuditPage' -benchtime 1x -count 1 ./audit/auditlog
	$(GO) test -run '^$$' -bench 'AdminScale' -benchtime 1x -count 1 ./test/bench
	$(GO) test -run '^$$' -bench 'Startup|FirstRequest|FirstProxied' -benchtime 15x -count 1 ./test/bench
	$(GO) test -run '^$$' -bench 'ProxyMemory' -benchtime 1x -count 1 ./test/bench
	$(GO) test -run '^$$' -bench 'ProxyProcess' -benchtime 4000x -count 1 ./test/bench
	$(GO) test -run '^$$' -bench 'KillSwitch' -benchtime 10x -count 1 ./test/bench
	$(GO) test -run '^$$' -bench 'CLIRoundTrip' -benchtime 20x -count 1 ./test/bench
	$(GO) test -run '^$$' -bench 'SessionStorePut' -benchtime 1x -count 1 ./sessionstore

# A short run of every fuzz target; `go test -fuzz` on one for longer.
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime 15s $$pkg || exit 1; \
	  done; \
	done

clean:
	rm -rf bin dist
