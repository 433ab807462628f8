#!/bin/sh
# Make sure `just` is on PATH: install it from PyPI (package rust-just) when it is missing.
set -eu
command -v just >/dev/null 2>&1 && exit 0
if ! python3 -m pip --version >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        apt-get install -y -qq python3-pip python3-venv >/dev/null 2>&1 \
            || { apt-get update -qq && apt-get install -y -qq python3-pip python3-venv >/dev/null; }
    else
        echo "get-just: python3 with pip is needed; install python3-pip (or just itself) first" >&2
        exit 1
    fi
fi
if [ "$(id -u)" = 0 ]; then
    # /usr/local/bin is on every root PATH; Debian's own Python needs the PEP 668 override.
    python3 -m pip install -q --disable-pip-version-check --prefix /usr/local rust-just 2>/dev/null \
        || python3 -m pip install -q --disable-pip-version-check --prefix /usr/local \
            --break-system-packages rust-just
else
    python3 -m pip install -q --disable-pip-version-check --user rust-just 2>/dev/null \
        || python3 -m pip install -q --disable-pip-version-check --user --break-system-packages rust-just
    echo "get-just: installed just into ~/.local/bin; make sure it is on your PATH" >&2
fi
command -v just >/dev/null 2>&1 || { echo "get-just: just installed but not on PATH" >&2; exit 1; }
