# Developer entry points. `make test` is what CI runs (via .ci/run).

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c

TOOLS_DIR       := .tools
NATS_SERVER     := $(TOOLS_DIR)/bin/nats-server
NATS_SERVER_ABS := $(abspath $(NATS_SERVER))
NATS_PORT       ?= 4222
NATS_STORE_DIR  ?= $(TOOLS_DIR)/run/jetstream
PROVISIONER     := target/release/wasmcloud-provisioner
DEPLOY_PYTHON   := $(TOOLS_DIR)/venv/bin/python
# `make run` starts nats-server in its own session so that Ctrl-C reaches only
# the provisioner: it drains while the server is still up, then the recipe
# stops the server. (nats-server would otherwise exit on the same SIGINT.)
SETSID          := $(shell command -v setsid 2>/dev/null || echo "python3 -c 'import os,sys;os.setsid();os.execvp(sys.argv[1],sys.argv[1:])'")

CARGO       ?= cargo
# --no-fail-fast: a failing test binary does not hide the results of the ones after it.
# Override to narrow the run, e.g. make test CARGO_TEST='cargo test --test harness_selftest'
CARGO_TEST  ?= cargo test --all-targets --no-fail-fast

.PHONY: all nats-server deploy-tools deploy-check build test run bench fmt lint clean-tools

all: build

## Install the pinned nats-server into .tools/bin (idempotent).
nats-server:
	./scripts/install-nats-server.sh

## Pinned Python packages of deploy-check in .tools/venv; systemd-analyze (idempotent).
deploy-tools:
	./scripts/install-deploy-tools.sh

## Every file under deploy/ and the Dockerfile: Kubernetes schemas (kubernetes-validate),
## the WasmCloudHostConfig schema, systemd-analyze verify, the binary's own flags and env.
deploy-check: deploy-tools
	$(CARGO) build --bin wasmcloud-provisioner
	$(DEPLOY_PYTHON) scripts/check-deploy.py --binary "$${CARGO_TARGET_DIR:-target}/debug/wasmcloud-provisioner"

build:
	$(CARGO) build --release

## Integration tests start real nats-server processes from .tools/bin; deploy-check first.
test: nats-server deploy-check
	NATS_SERVER_BIN=$(NATS_SERVER_ABS) $(CARGO_TEST)

## Local nats-server (JetStream on) + the provisioner service in the foreground.
run: nats-server build
	@mkdir -p $(NATS_STORE_DIR)
	@$(SETSID) $(NATS_SERVER) -js -a 127.0.0.1 -p $(NATS_PORT) -sd $(abspath $(NATS_STORE_DIR)) \
	    >$(TOOLS_DIR)/run/nats-server.log 2>&1 & \
	nats_pid=$$!; \
	trap 'kill $$nats_pid 2>/dev/null; wait $$nats_pid 2>/dev/null || true' EXIT; \
	trap 'exit 130' INT; trap 'exit 143' TERM; \
	for _ in $$(seq 1 100); do \
	    if (exec 3<>/dev/tcp/127.0.0.1/$(NATS_PORT)) 2>/dev/null; then ready=1; break; fi; \
	    kill -0 $$nats_pid 2>/dev/null || { echo "nats-server exited; see $(TOOLS_DIR)/run/nats-server.log" >&2; cat $(TOOLS_DIR)/run/nats-server.log >&2; exit 1; }; \
	    sleep 0.1; \
	done; \
	[[ "$${ready:-}" == 1 ]] || { echo "nats-server did not open port $(NATS_PORT)" >&2; exit 1; }; \
	echo "nats-server (pid $$nats_pid) on nats://127.0.0.1:$(NATS_PORT), store $(NATS_STORE_DIR), log $(TOOLS_DIR)/run/nats-server.log"; \
	echo "Try, in another shell:"; \
	echo "  nats -s nats://127.0.0.1:$(NATS_PORT) req wasmcloud.provision.lattice default"; \
	echo "  nats -s nats://127.0.0.1:$(NATS_PORT) micro info wasmcloud-provisioner"; \
	echo "  $(PROVISIONER) plan --lattice default        # no nats CLI needed"; \
	echo "Starting the provisioner (Ctrl-C stops both)..."; \
	NATS_URL=nats://127.0.0.1:$(NATS_PORT) $(PROVISIONER) serve $(RUN_ARGS)

## Hot-path figures next to baselines from the same run; table + target/bench/results.json.
bench: nats-server
	NATS_SERVER_BIN=$(NATS_SERVER_ABS) $(CARGO) bench --bench bench

fmt:
	$(CARGO) fmt --all

lint:
	$(CARGO) clippy --all-targets -- -D warnings

clean-tools:
	rm -rf $(TOOLS_DIR)
