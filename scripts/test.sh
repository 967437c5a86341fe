#!/usr/bin/env bash
# Install what the test suite needs and run it: lint, types, tests.
# On Debian as root (or with sudo): apt packages for the real registry, skopeo and
# htpasswd (and Python's venv module if missing); then the Python package with its test
# extras, into the active virtual environment or, when none is active, into .venv in this
# checkout (made here, reused next time). Arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

in_venv() { python3 -c 'import sys; sys.exit(sys.prefix == sys.base_prefix)' 2>/dev/null; }

need=()
command -v docker-registry >/dev/null || need+=(docker-registry)
command -v skopeo >/dev/null || need+=(skopeo)
command -v htpasswd >/dev/null || need+=(apache2-utils)
command -v git >/dev/null || need+=(git)
if ! command -v python3 >/dev/null; then
  need+=(python3 python3-venv)
elif ! in_venv && [ ! -x .venv/bin/python ] && ! python3 -c 'import ensurepip' 2>/dev/null; then
  need+=(python3-venv)
fi
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends "${need[@]}"
fi

if ! in_venv; then
  [ -x .venv/bin/python ] || python3 -m venv .venv
  # shellcheck disable=SC1091
  . .venv/bin/activate
fi
echo "== testing $(pwd) with $(command -v python3)"

python3 -m pip install --quiet --disable-pip-version-check -e '.[test]'

python3 -m ruff check .
python3 -m ruff format --check .
python3 -m mypy
python3 -m pytest "$@"
