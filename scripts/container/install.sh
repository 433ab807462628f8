#!/bin/sh
# Build stage of the Containerfile: a virtual environment at DEST with the gateway's runtime
# dependencies (those pyproject.toml declares, at the versions requirements.lock pins), and a
# `docker-faas` command that runs our sources from DEST/app.
#
# Usage: install.sh SRC DEST    (SRC holds pyproject.toml, requirements.lock, maybe wheels)
# Wheels in SRC: installed with --no-index (nothing is downloaded). No wheels (only a pip
# wheel, or none): the dependencies come from PyPI. pip runs from its own wheel when SRC has
# one, so a base image without pip or ensurepip works (docker-faas/base:bookworm); else the
# base's pip installs into the environment with --python.
set -eu
src=$1
dest=$2
cd "$src"

python3 -m venv --without-pip "$dest"
py=$dest/bin/python
"$py" -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]))' \
  >requirements.in

pip_wheel=$(ls pip-*.whl 2>/dev/null | head -n 1 || true)
if [ -n "$pip_wheel" ]; then
  run_pip() { "$py" "$src/$pip_wheel/pip" "$@"; }
elif python3 -m pip --version >/dev/null 2>&1; then
  run_pip() { python3 -m pip --python "$py" "$@"; }
else
  echo "install.sh: the base image has no pip: put a pip wheel among the WHEELS" >&2
  exit 1
fi

if ls ./*.whl 2>/dev/null | grep -qv '^\./pip-'; then
  echo "install.sh: installing from the wheels given ($(ls ./*.whl | wc -l) files), no index"
  set -- --no-index --find-links "$src"
else
  echo "install.sh: no wheels given: installing from PyPI"
  set --
fi
PIP_ROOT_USER_ACTION=ignore run_pip install --no-cache-dir --disable-pip-version-check \
  "$@" -r requirements.in -c requirements.lock

# Our packages are found through a .pth file: no build backend, no egg-info.
site=$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
echo "$dest/app" >"$site/docker-faas.pth"
cat >"$dest/bin/docker-faas" <<SCRIPT
#!/bin/sh
# docker-faas serve | docker-faas password
exec $py -m api.cli "\$@"
SCRIPT
chmod 0755 "$dest/bin/docker-faas"
rm -f "$dest"/bin/activate*  "$dest"/bin/Activate.ps1
