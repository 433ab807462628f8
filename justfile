# docker-faas recipes. `just up` starts the platform, `just test` runs every test.
# Each recipe does its own set-up: Python environment, Docker engine, local images.

set shell := ["bash", "-euo", "pipefail", "-c"]

venv := ".venv"
py := venv / "bin/python"

# List the recipes.
default:
    @just --list

# Create or refresh the Python environment from the lock files (skipped when unchanged).
setup:
    #!/usr/bin/env bash
    set -euo pipefail
    stamp="{{venv}}/.lock-hash"
    want=$(cat requirements.lock requirements-dev.lock pyproject.toml setup.py api/_relay.c | sha256sum | cut -d' ' -f1)
    if [ -x "{{py}}" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then exit 0; fi
    python3 -m venv "{{venv}}" 2>/dev/null || { apt-get install -y -qq python3-venv >/dev/null && python3 -m venv "{{venv}}"; }
    "{{py}}" -m pip install -q --disable-pip-version-check -r requirements.lock -r requirements-dev.lock
    # the C part of the invocation path (api/_relay.c) wants a compiler; without one the
    # install still succeeds and the gateway runs its pure-Python parser (slower)
    command -v gcc >/dev/null || apt-get install -y -qq gcc >/dev/null 2>&1 || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq gcc >/dev/null 2>&1; } || echo "setup: no C compiler: api._relay not built, the gateway runs its pure-Python parser" >&2
    "{{py}}" -m pip install -q --disable-pip-version-check --no-deps -e .
    "{{py}}" -c "import api._relay" 2>/dev/null || echo "setup: api._relay is not built: invocations use the pure-Python parser" >&2
    echo "$want" > "$stamp"

# Bring up a Docker engine when none answers (installs docker.io as root on Debian).
engine:
    bash scripts/engine.sh

# Build the local base image and every fixture image (skips what is already built).
images: engine
    bash scripts/images.sh

# Build the gateway image (Containerfile) from the local base and host-downloaded wheels (cached).
image: setup images
    bash scripts/gateway-image.sh

# The gateway container with docker-compose: up and wait (no arguments), or `just compose down`.
compose *args: image
    bash scripts/compose.sh {{args}}

# Set everything up and run the gateway in the foreground.
up: setup engine images
    #!/usr/bin/env bash
    set -euo pipefail
    export STATE_DB_PATH="${STATE_DB_PATH:-state/docker-faas.db}"
    port="${GATEWAY_PORT:-8080}"
    user="${AUTH_USER:-admin}"
    pass=$({{py}} -m api.cli password)
    cat <<MSG

    docker-faas is starting on http://127.0.0.1:${port}  (metrics on :${METRICS_PORT:-8082})
      user:     ${user}
      password: ${pass}

    Try a function:
      curl -u ${user}:${pass} -X POST http://127.0.0.1:${port}/system/functions \\
        -d '{"service":"echo","image":"docker-faas-fixtures/echo:latest"}'
      curl -d 'hello' http://127.0.0.1:${port}/function/echo

    MSG
    exec {{venv}}/bin/docker-faas serve

# Run the whole test suite against the real engine.
test: setup engine images
    #!/usr/bin/env bash
    set -uo pipefail
    mkdir -p test-artifacts
    bash scripts/chromium.sh  # the browser of the dashboard tests (tests/ui)
    {{venv}}/bin/pytest tests -q -p no:cacheprovider --junitxml=test-artifacts/junit.xml "$@"
    rc=$?
    if [ $rc -eq 5 ]; then echo "pytest collected no tests: that is a failure"; exit 1; fi
    exit $rc

# Benchmarks: the proxy against direct calls and nginx (results: docs/benchmarks.md).
bench: setup engine images
    {{py}} bench/proxy.py
    {{py}} bench/resilience.py
    {{py}} bench/ui.py
    {{py}} bench/eventlog.py

# Not part of `just test`: restarts the Docker engine; arguments go to run.py (--only chaos).
# Reliability suite: fuzzing, random sequences, faults under load, disk full, 1,000 connections.
reliability *args: setup engine images
    {{py}} bench/reliability/run.py {{args}}

# Lint and type-check.
lint: setup
    {{venv}}/bin/ruff check .
    {{venv}}/bin/mypy events controller api
