#!/usr/bin/env bash
# Idempotent set-up: a virtual environment in .venv with everything the app (and, with --test, the
# tests) need. Fast when nothing changed: pip runs only when a requirements file changed, and
# torch-cluster is compiled only when it is not importable.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
WANT_TEST=0
[ "${1:-}" = "--test" ] && WANT_TEST=1

[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
PY="$VENV/bin/python"

stamp="$VENV/.requirements.sha"
reqs="requirements.txt"
[ $WANT_TEST = 1 ] && reqs="requirements.txt requirements-test.txt"
want_sha=$(cat $reqs | sha256sum | cut -d' ' -f1)
have_sha=$(cat "$stamp" 2>/dev/null || true)
if [ "$want_sha" != "$have_sha" ] && ! { [ $WANT_TEST = 0 ] && [ -f "$VENV/.test-installed" ] && grep -q "$(sha256sum requirements.txt | cut -d' ' -f1)" "$VENV/.app-sha" 2>/dev/null; }; then
  echo "[setup] installing Python packages into $VENV"
  "$PY" -m pip install --quiet --upgrade pip
  # torch first, alone, from the pinned CPU wheel.
  "$PY" -m pip install --quiet torch==2.13.0
  if [ $WANT_TEST = 1 ]; then
    "$PY" -m pip install --quiet -r requirements-test.txt
    touch "$VENV/.test-installed"
  else
    "$PY" -m pip install --quiet -r requirements.txt
  fi
  sha256sum requirements.txt | cut -d' ' -f1 > "$VENV/.app-sha"
  echo "$want_sha" > "$stamp"
fi

if ! "$PY" -c "import torch_cluster" 2>/dev/null; then
  echo "[setup] compiling torch-cluster 1.6.3 against the installed torch (about 10 minutes, once)"
  MAX_JOBS=2 "$PY" -m pip install --quiet --no-build-isolation torch-cluster==1.6.3
fi

if [ $WANT_TEST = 1 ] && [ ! -x /usr/bin/chromium ]; then
  echo "[setup] installing Debian chromium for the browser tests"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium chromium-driver >/dev/null
fi
echo "[setup] environment ready: $VENV"
