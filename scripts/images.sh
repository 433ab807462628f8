#!/usr/bin/env bash
# Builds every image docker-faas needs locally, with no registry to pull from:
#   docker-faas/base:bookworm           minimal Debian bookworm + python3 (mmdebstrap | docker import)
#   docker-faas-fixtures/<name>:latest  one per fixtures/functions/<name>/Containerfile
#
# Each image carries the label docker-faas.source-hash: a sha256 over its recipe and source
# files (and, for fixtures, the base image's id). An image whose label matches is skipped, so a
# second run takes about a second. Usage: scripts/images.sh [--force]
# Env: BASE_IMAGE=<local image> builds the fixtures on that image instead of ours.
set -euo pipefail

cd "$(dirname "$0")/.."

BASE_TAG=docker-faas/base:bookworm
FIXTURE_REPO=docker-faas-fixtures
HASH_LABEL=docker-faas.source-hash
FORCE=0
case "${1:-}" in
  --force) FORCE=1 ;;
  "") ;;
  *) echo "usage: scripts/images.sh [--force]" >&2; exit 2 ;;
esac

die() { echo "images.sh: error: $*" >&2; exit 1; }
note() { echo "images.sh: $*"; }

command -v docker >/dev/null 2>&1 || die "no docker CLI: run 'just engine' (scripts/engine.sh) first"
docker info >/dev/null 2>&1 || die "the Docker engine does not answer: run 'just engine' first"

# The legacy builder: Debian's docker.io has no buildx, and the Dockerfiles need nothing more.
export DOCKER_BUILDKIT=0

work=$(mktemp -d "${TMPDIR:-/tmp}/docker-faas-images.XXXXXX")
trap 'rm -rf "$work"' EXIT

hash_label() {  # prints the image's source-hash label, or nothing when the image is missing
  docker image inspect --format "{{ index .Config.Labels \"$HASH_LABEL\" }}" "$1" 2>/dev/null || true
}

size_of() {
  docker image inspect --format '{{.Size}}' "$1" | awk '{ printf "%.0f MB", $1 / 1000000 }'
}

# ---------------------------------------------------------------- the base image

# The whole recipe is data, so its hash changes exactly when the recipe does.
# shellcheck disable=SC2016 # "$1" in the hook is for mmdebstrap's shell: the chroot's path
BASE_RECIPE=(
  --variant=minbase
  --include=python3
  # merged /usr without the usrmerge package (which would pull in all of perl)
  --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr
  --dpkgopt='path-exclude=/usr/share/doc/*'
  --dpkgopt='path-include=/usr/share/doc/*/copyright'
  --dpkgopt='path-exclude=/usr/share/man/*'
  --dpkgopt='path-exclude=/usr/share/info/*'
  --dpkgopt='path-exclude=/usr/share/locale/*'
  --dpkgopt='path-exclude=/usr/share/lintian/*'
  --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/* "$1"/var/cache/debconf/*-old "$1"/var/log/*.log "$1"/var/log/apt/*'
  bookworm
)
BASE_CHANGES=(
  'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
  'ENV LANG=C.UTF-8'
  'CMD ["/bin/sh"]'
)

ensure_mmdebstrap() {
  command -v mmdebstrap >/dev/null 2>&1 && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    note "installing mmdebstrap with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q --no-install-recommends mmdebstrap >"$work/apt.log" 2>&1 ||
      { apt-get update -q >>"$work/apt.log" 2>&1 &&
        apt-get install -y -q --no-install-recommends mmdebstrap >>"$work/apt.log" 2>&1; } ||
      { tail -n 20 "$work/apt.log" >&2; die "could not install mmdebstrap"; }
  else
    die "mmdebstrap is missing: install it (Debian/Ubuntu: apt-get install mmdebstrap), or set BASE_IMAGE to a local image with python3"
  fi
}

build_base() {
  local hash started
  hash=$(printf '%s\n' "base-recipe-v1" "${BASE_RECIPE[@]}" "${BASE_CHANGES[@]}" | sha256sum | cut -d' ' -f1)
  if [ "$FORCE" = 0 ] && [ "$(hash_label "$BASE_TAG")" = "$hash" ]; then
    note "skipped $BASE_TAG (up to date, $(size_of "$BASE_TAG"))"
    return 0
  fi
  ensure_mmdebstrap
  note "building $BASE_TAG with mmdebstrap (about 20 s)"
  started=$SECONDS
  if ! mmdebstrap "${BASE_RECIPE[@]}" "$work/base.tar" >"$work/mmdebstrap.log" 2>&1; then
    tail -n 30 "$work/mmdebstrap.log" >&2
    die "mmdebstrap failed (log above); it needs root and http://deb.debian.org/debian"
  fi
  local changes=()
  for change in "${BASE_CHANGES[@]}" "LABEL $HASH_LABEL=$hash"; do
    changes+=(--change "$change")
  done
  docker import "${changes[@]}" --message "docker-faas base: Debian bookworm minbase + python3" \
    "$work/base.tar" "$BASE_TAG" >/dev/null || die "docker import of the base image failed"
  rm -f "$work/base.tar"
  note "built $BASE_TAG in $((SECONDS - started)) s ($(size_of "$BASE_TAG"))"
}

if [ -n "${BASE_IMAGE:-}" ] && [ "$BASE_IMAGE" != "$BASE_TAG" ]; then
  docker image inspect "$BASE_IMAGE" >/dev/null 2>&1 ||
    die "BASE_IMAGE=$BASE_IMAGE is not a local image (there is no registry to pull from): load or build it, or unset BASE_IMAGE"
  base=$BASE_IMAGE
  note "using BASE_IMAGE=$base, not building $BASE_TAG"
else
  base=$BASE_TAG
  build_base
fi
base_id=$(docker image inspect --format '{{.Id}}' "$base")

# ---------------------------------------------------------------- fixture functions

fixture_hash() {  # $1 = function name; hashes its folder, the watchdog, the ignore file, the base
  (
    cd fixtures
    find "functions/$1" watchdog/watchdog.py .dockerignore -type f ! -name '*.pyc' ! -name '*.bin' -print0 |
      LC_ALL=C sort -z | xargs -0 sha256sum
    echo "fixture-recipe-v1 base=$base_id"
  ) | sha256sum | cut -d' ' -f1
}

# C fixtures (fast-echo) are compiled on the host, statically, before their image is built.
for source in fixtures/functions/*/*.c; do
  [ -e "$source" ] || continue
  binary="$(dirname "$source")/$(basename "$(dirname "$source")").bin"
  if [ ! -x "$binary" ] || [ "$source" -nt "$binary" ]; then
    if ! command -v gcc >/dev/null 2>&1; then
      note "installing gcc (for $source)"
      { apt-get install -y -qq gcc libc6-dev || { apt-get update -qq && apt-get install -y -qq gcc libc6-dev; }; } \
        >/tmp/docker-faas-apt.log 2>&1 || die "gcc is missing: apt-get install gcc libc6-dev (log: /tmp/docker-faas-apt.log)"
    fi
    gcc -O2 -static -o "$binary" "$source" || die "compiling $source failed"
  fi
done

built=0
for containerfile in fixtures/functions/*/Containerfile; do
  name=$(basename "$(dirname "$containerfile")")
  tag="$FIXTURE_REPO/$name:latest"
  hash=$(fixture_hash "$name")
  if [ "$FORCE" = 0 ] && [ "$(hash_label "$tag")" = "$hash" ]; then
    note "skipped $tag (up to date, $(size_of "$tag"))"
    continue
  fi
  started=$SECONDS
  if ! docker build --file "$containerfile" --build-arg "BASE_IMAGE=$base" \
      --label "$HASH_LABEL=$hash" --tag "$tag" fixtures >"$work/build-$name.log" 2>&1; then
    tail -n 30 "$work/build-$name.log" >&2
    die "docker build of $tag failed (log above)"
  fi
  built=$((built + 1))
  note "built $tag in $((SECONDS - started)) s ($(size_of "$tag"))"
done

if [ "$built" -gt 0 ]; then
  # Rebuilt images leave their predecessors untagged; drop those (only ours, by label).
  docker image prune --force --filter "label=$HASH_LABEL" >/dev/null 2>&1 || true
fi
