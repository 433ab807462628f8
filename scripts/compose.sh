#!/usr/bin/env bash
# docker-compose on docker-compose.yml, with the host prepared for it (`just compose`):
#   - docker-compose itself (Debian's package, installed with apt-get as root when missing)
#   - DOCKER_GID: the group owning the Docker socket, so the gateway needs no root
#   - SECRETS_DIR (default /run/docker-faas/secrets): created 0700 for the gateway's user;
#     /run is a tmpfs, so after a reboot it is created again here (or see docs/deploy.md)
#   - GATEWAY_PASSWORD_FILE (default state/compose/basic-auth-password): generated once,
#     owner root, group the gateway's, mode 0640
# Usage: scripts/compose.sh [docker-compose arguments]
#   no arguments: up -d, wait until the gateway is healthy, print its URL and credentials.
set -euo pipefail

cd "$(dirname "$0")/.."

die() { echo "compose.sh: error: $*" >&2; exit 1; }
note() { echo "compose.sh: $*" >&2; }

if ! command -v docker-compose >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    note "installing docker-compose with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q --no-install-recommends docker-compose >/tmp/docker-faas-apt.log 2>&1 ||
      { apt-get update -q >>/tmp/docker-faas-apt.log 2>&1 &&
        apt-get install -y -q --no-install-recommends docker-compose \
          >>/tmp/docker-faas-apt.log 2>&1; } ||
      { tail -n 20 /tmp/docker-faas-apt.log >&2; die "could not install docker-compose"; }
  else
    die "docker-compose is missing: install it (Debian: apt-get install docker-compose)"
  fi
fi

export DOCKER_SOCKET=${DOCKER_SOCKET:-/var/run/docker.sock}
[ -S "$DOCKER_SOCKET" ] || die "no Docker socket at $DOCKER_SOCKET: run 'just engine' or set DOCKER_SOCKET"
export DOCKER_GID=${DOCKER_GID:-$(stat -c %g "$DOCKER_SOCKET")}
export GATEWAY_USER=${GATEWAY_USER:-10001:10001}
uid=${GATEWAY_USER%%:*}
gid=${GATEWAY_USER#*:}
export SECRETS_DIR=${SECRETS_DIR:-/run/docker-faas/secrets}
export GATEWAY_PASSWORD_FILE=${GATEWAY_PASSWORD_FILE:-$PWD/state/compose/basic-auth-password}

if [ ! -d "$SECRETS_DIR" ] || [ "$(stat -c %u "$SECRETS_DIR")" != "$uid" ]; then
  install -d -m 0700 -o "$uid" -g "$gid" "$SECRETS_DIR" ||
    die "cannot prepare SECRETS_DIR=$SECRETS_DIR for uid $uid (run as root)"
fi
if [ ! -s "$GATEWAY_PASSWORD_FILE" ]; then
  install -d -m 0700 "$(dirname "$GATEWAY_PASSWORD_FILE")"
  (umask 077 && head -c 18 /dev/urandom | base64 | tr '+/' '-_' >"$GATEWAY_PASSWORD_FILE")
  chgrp "$gid" "$GATEWAY_PASSWORD_FILE" && chmod 0640 "$GATEWAY_PASSWORD_FILE" ||
    die "cannot give $GATEWAY_PASSWORD_FILE to group $gid"
  note "generated the admin password in $GATEWAY_PASSWORD_FILE"
fi

if [ $# -gt 0 ]; then
  exec docker-compose "$@"
fi

docker-compose up -d
cid=$(docker-compose ps -q gateway)
for _ in $(seq 120); do
  status=$(docker inspect -f '{{.State.Health.Status}}' "$cid")
  [ "$status" = healthy ] && break
  sleep 0.5
done
[ "$status" = healthy ] || { docker-compose logs --tail 30 gateway >&2; die "the gateway is $status"; }
port=${GATEWAY_PORT:-8080}
user=${AUTH_USER:-admin}
cat <<MSG

docker-faas runs in a container (docker-compose ps; logs: docker-compose logs -f gateway)
  URL:      http://127.0.0.1:${port}   (metrics on :${METRICS_PORT:-8082})
  user:     ${user}
  password: $(cat "$GATEWAY_PASSWORD_FILE")

Try a function:
  curl -u ${user}:\$(cat $GATEWAY_PASSWORD_FILE) -X POST http://127.0.0.1:${port}/system/functions \\
    -d '{"service":"echo","image":"docker-faas-fixtures/echo:latest"}'
  curl -d 'hello' http://127.0.0.1:${port}/function/echo
Stop it: just compose down   (the state volume stays; 'down -v' removes it too)
MSG
