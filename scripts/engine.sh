#!/bin/sh
# Makes sure a Docker engine answers (`just engine`). Idempotent: when `docker info` works it
# only prints the server version. Otherwise, as root on Debian/Ubuntu, it installs docker.io,
# clears a pid file or socket left behind by a dockerd that is gone, starts dockerd in the
# background and waits for it. Anywhere else it says what to install and exits 1.
set -eu

PIDFILE=${DOCKERD_PIDFILE:-/var/run/docker.pid}
SOCKET=${DOCKERD_SOCKET:-/var/run/docker.sock}
LOG=${DOCKERD_LOG:-/var/log/docker-faas-dockerd.log}
EXEC_ROOT=${DOCKERD_EXEC_ROOT:-/var/run/docker}  # where dockerd keeps its own containerd's pid
WAIT_SECONDS=60
# Extra dockerd flags, word-split (for a second, throw-away engine when testing this script).
DOCKERD_ARGS=${DOCKERD_ARGS:-}

say() { echo "engine.sh: $*"; }
fail() { echo "engine.sh: error: $*" >&2; exit 1; }

engine_version() {
  docker version --format '{{.Server.Version}}' 2>/dev/null
}

if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
  say "Docker engine is up (server $(engine_version))"
  exit 0
fi

if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  if command -v docker >/dev/null 2>&1 && [ -S "$SOCKET" ] && [ ! -w "$SOCKET" ]; then
    fail "a Docker engine runs but $SOCKET is not writable for $(id -un): add the user to the 'docker' group (then log in again), or run as root"
  fi
  fail "no Docker engine answers. Install Docker Engine and start it: https://docs.docker.com/engine/install/ , or run this as root on Debian/Ubuntu to have it installed and started"
fi

export DEBIAN_FRONTEND=noninteractive
PATH=$PATH:/usr/sbin:/sbin

apt_install() {
  # A stale package list makes installs fail: update once, then try again.
  apt-get install -y -q --no-install-recommends "$@" >/tmp/docker-faas-apt.log 2>&1 || {
    say "apt-get install failed; running apt-get update and trying again"
    apt-get update -q >>/tmp/docker-faas-apt.log 2>&1 &&
      apt-get install -y -q --no-install-recommends "$@" >>/tmp/docker-faas-apt.log 2>&1
  } || {
    tail -n 20 /tmp/docker-faas-apt.log >&2
    fail "could not install $* with apt-get (log: /tmp/docker-faas-apt.log)"
  }
}

missing=""
command -v dockerd >/dev/null 2>&1 || missing="$missing docker.io"
command -v docker >/dev/null 2>&1 || case "$missing" in *docker.io*) ;; *) missing="$missing docker.io" ;; esac
command -v iptables >/dev/null 2>&1 || missing="$missing iptables"
if [ -n "$missing" ]; then
  say "installing$missing with apt-get"
  # shellcheck disable=SC2086 # word splitting wanted: a list of package names
  apt_install $missing
fi

# A pid file is stale when the pid in it is gone, a zombie (killed, not yet reaped: `kill -0`
# still succeeds on it) or another program. dockerd refuses to start over a live-looking pid
# file, and waits 15 s and fails on a stale one for its containerd.
pidfile_stale() {  # $1 = pid file, $2 = the program that wrote it
  pid=$(cat "$1" 2>/dev/null || true)
  case "$pid" in '' | *[!0-9]*) return 0 ;; esac
  [ "$(cat "/proc/$pid/comm" 2>/dev/null || true)" = "$2" ] || return 0
  [ "$(sed -n 's/^.*) \(.\).*$/\1/p' "/proc/$pid/stat" 2>/dev/null || true)" = Z ]
}

dockerd_alive() {
  [ -f "$PIDFILE" ] && ! pidfile_stale "$PIDFILE" dockerd
}

start_dockerd() {
  if [ -e "$PIDFILE" ]; then
    say "removing stale $PIDFILE (its dockerd is gone)"
    rm -f "$PIDFILE"
  fi
  if [ -S "$SOCKET" ]; then
    say "removing stale socket $SOCKET"
    rm -f "$SOCKET"
  fi
  containerd_pidfile=$EXEC_ROOT/containerd/containerd.pid
  if [ -f "$containerd_pidfile" ] && pidfile_stale "$containerd_pidfile" containerd; then
    say "removing stale $containerd_pidfile (its containerd is gone)"
    rm -f "$containerd_pidfile"
  fi
  say "starting dockerd (log: $LOG)"
  mkdir -p "$(dirname "$LOG")"
  # setsid + nohup: the engine outlives this shell and the terminal or CI step that ran it.
  # shellcheck disable=SC2086 # DOCKERD_ARGS is a word list on purpose
  nohup setsid dockerd --pidfile "$PIDFILE" $DOCKERD_ARGS </dev/null >>"$LOG" 2>&1 &
}

give_up() {
  echo "engine.sh: the last lines of $LOG:" >&2
  tail -n 30 "$LOG" >&2 || true
  fail "$1 (full log: $LOG)"
}

# Poll about twice a second. A dockerd that is already starting gets waited for; if there is
# none (or it dies meanwhile) we start one, and give it a second try if it exits at once.
now() { date +%s; }
began=$(now)
started_at=""
starts=0
waiting_said=""
while :; do
  if timeout 10 docker info >/dev/null 2>&1; then
    say "Docker engine is up (server $(engine_version)) after $(($(now) - began)) s"
    exit 0
  fi
  if ! dockerd_alive; then
    if [ -z "$started_at" ] || { [ "$starts" -lt 2 ] && [ $(($(now) - started_at)) -ge 2 ]; }; then
      [ "$starts" = 0 ] || say "dockerd exited; starting it once more"
      start_dockerd
      started_at=$(now)
      starts=$((starts + 1))
    elif [ $(($(now) - started_at)) -ge 5 ]; then
      give_up "dockerd exited right after starting"
    fi
  elif [ -z "$started_at" ] && [ -z "$waiting_said" ]; then
    say "dockerd (pid $(cat "$PIDFILE")) is running but not answering yet; waiting for it"
    waiting_said=1
  fi
  if [ $(($(now) - began)) -ge "$WAIT_SECONDS" ]; then
    give_up "dockerd did not answer within $WAIT_SECONDS s"
  fi
  sleep 0.5
done
