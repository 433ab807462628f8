#!/bin/sh
# Makes sure a Chromium is installed for the dashboard's browser tests (tests/ui) and its
# benchmark (bench/ui.py). Playwright drives the system's Chromium through executable_path,
# since `playwright install` cannot download a browser build here. Idempotent: when one is
# installed it only says which. Otherwise, as root on Debian/Ubuntu, it installs Debian's
# `chromium` with apt-get; anywhere else it says what to install and exits 1.
set -eu

say() { echo "chromium.sh: $*"; }

for name in chromium chromium-browser; do
  if command -v "$name" >/dev/null 2>&1; then
    say "$(command -v "$name") is installed"
    exit 0
  fi
done

if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "chromium.sh: error: no Chromium found; install Debian's 'chromium' package (as root: apt-get install chromium)" >&2
  exit 1
fi

say "installing Debian's chromium with apt-get"
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -qq chromium >/dev/null 2>&1 || {
  apt-get update -qq >/dev/null
  apt-get install -y -qq chromium >/dev/null
}
say "$(command -v chromium) is installed"
