#!/usr/bin/env bash
# Builds the gateway image (Containerfile) with no registry: FROM our local base image, with
# the dependency wheels downloaded on the host (PyPI is reachable from here; a container that
# reaches it may not be) into build/wheels.
#
# The image carries the label docker-faas.source-hash: a sha256 over every file that goes into
# it and the base image's id. An image whose label matches is skipped (about a second), as
# scripts/images.sh does. Usage: scripts/gateway-image.sh [--force]
# Env: GATEWAY_IMAGE (default docker-faas/gateway:latest), BASE_IMAGE (default
# docker-faas/base:bookworm, built by scripts/images.sh), PYTHON (default .venv/bin/python).
set -euo pipefail

cd "$(dirname "$0")/.."

TAG=${GATEWAY_IMAGE:-docker-faas/gateway:latest}
BASE=${BASE_IMAGE:-docker-faas/base:bookworm}
PY=${PYTHON:-.venv/bin/python}
HASH_LABEL=docker-faas.source-hash
WHEELS=build/wheels
FORCE=0
case "${1:-}" in
  --force) FORCE=1 ;;
  "") ;;
  *) echo "usage: scripts/gateway-image.sh [--force]" >&2; exit 2 ;;
esac

die() { echo "gateway-image.sh: error: $*" >&2; exit 1; }
note() { echo "gateway-image.sh: $*"; }

docker info >/dev/null 2>&1 || die "the Docker engine does not answer: run 'just engine' first"
[ -x "$PY" ] || die "$PY is missing: run 'just setup' first (or set PYTHON)"
docker image inspect "$BASE" >/dev/null 2>&1 ||
  die "base image $BASE is missing: run 'just images' (there is no registry to pull from)"
export DOCKER_BUILDKIT=0  # Debian's docker.io has no buildx; the legacy builder is enough

# Everything the build reads (what .dockerignore lets in, less the wheels: they follow from
# pyproject.toml and requirements.lock, and from the base's Python, which its id covers).
base_id=$(docker image inspect --format '{{.Id}}' "$BASE")
hash=$(
  {
    find Containerfile .dockerignore pyproject.toml requirements.lock LICENSE \
      events controller api scripts/container -type f \
      ! -name '*.pyc' ! -path '*/__pycache__/*' -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
    echo "gateway-recipe-v1 base=$base_id"
  } | sha256sum | cut -d' ' -f1
)
current=$(docker image inspect --format "{{ index .Config.Labels \"$HASH_LABEL\" }}" "$TAG" \
  2>/dev/null || true)
if [ "$FORCE" = 0 ] && [ "$current" = "$hash" ]; then
  note "skipped $TAG (up to date)"
  exit 0
fi

started=$SECONDS
old_id=$(docker image inspect --format '{{.Id}}' "$TAG" 2>/dev/null || true)
log=$(mktemp "${TMPDIR:-/tmp}/docker-faas-gateway-image.XXXXXX")
trap 'rm -f "$log"' EXIT

# Wheels for the base's Python (its version, this machine's platform), at the locked
# versions, plus pip itself: the base image has none. pip's cache makes this quick.
base_py=$(docker run --rm --network none --entrypoint python3 "$BASE" \
  -c 'import sys; print("%d.%d" % sys.version_info[:2])') ||
  die "$BASE has no working python3"
mapfile -t deps < <("$PY" -c 'import tomllib
for dep in tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]:
    print(dep)')
pip_version=$("$PY" -m pip --version | cut -d' ' -f2)
wanted=$(printf '%s\n' "python=$base_py" "pip=$pip_version" "${deps[@]}" | cat - requirements.lock |
  sha256sum | cut -d' ' -f1)
if [ "$(cat "$WHEELS/.stamp" 2>/dev/null || true)" = "$wanted" ]; then
  note "wheels in $WHEELS are up to date"
else
  rm -rf "$WHEELS"
  mkdir -p "$WHEELS"
  if ! "$PY" -m pip download --quiet --disable-pip-version-check --only-binary=:all: \
      --python-version "$base_py" --dest "$WHEELS" -c requirements.lock \
      "${deps[@]}" "pip==$pip_version" >"$log" 2>&1; then
    grep -v "is neither a file nor a directory" "$log" | tail -n 20 >&2
    die "pip download of the wheels failed (log above)"
  fi
  echo "$wanted" >"$WHEELS/.stamp"
  note "downloaded $(find "$WHEELS" -name '*.whl' | wc -l) wheels for Python $base_py into $WHEELS"
fi

if ! docker build --file Containerfile --build-arg "BASE_IMAGE=$BASE" \
    --build-arg "WHEELS=$WHEELS" --label "$HASH_LABEL=$hash" --tag "$TAG" . >"$log" 2>&1; then
  tail -n 30 "$log" >&2
  die "docker build of $TAG failed (log above)"
fi
size=$(docker image inspect --format '{{.Size}}' "$TAG" | awk '{ printf "%.0f MB", $1 / 1000000 }')
note "built $TAG in $((SECONDS - started)) s ($size)"
# The image it replaces is untagged now: remove it (not the build stage's layers, which are
# the cache of the next build; a container still using the old image keeps it).
if [ -n "$old_id" ] && [ "$old_id" != "$(docker image inspect --format '{{.Id}}' "$TAG")" ]; then
  docker rmi "$old_id" >/dev/null 2>&1 || true
fi
