#!/usr/bin/env bash
# Idempotent set-up: a virtual environment in .venv with everything the app (and, with --test, the
# tests) need. Fast when nothing changed: pip runs only when a requirements file changed since the
# last install, and torch-cluster is compiled only when it is not importable.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
TARGET=requirements.txt
[ "${1:-}" = "--test" ] && TARGET=requirements-test.txt

[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
PY="$VENV/bin/python"

# A test install is a superset of the app install, so its stamp satisfies both.
want=$(cat requirements.txt requirements-test.txt | sha256sum | cut -d' ' -f1)
if [ "$(cat "$VENV/.stamp-$TARGET" 2>/dev/null)" != "$want" ] &&
   [ "$(cat "$VENV/.stamp-requirements-test.txt" 2>/dev/null)" != "$want" ]; then
  echo "[setup] installing Python packages into $VENV"
  "$PY" -m pip install --quiet --upgrade pip
  # torch first and alone, pinned: an unpinned torch would pull a CUDA build of several GB.
  "$PY" -m pip install --quiet torch==2.13.0
  "$PY" -m pip install --quiet -r "$TARGET"
  echo "$want" > "$VENV/.stamp-$TARGET"
fi

if ! "$PY" -c "import torch_cluster" 2>/dev/null; then
  echo "[setup] compiling torch-cluster 1.6.3 against the installed torch (about 10 minutes, once)"
  # Without build isolation, so it builds against the torch above instead of fetching another.
  MAX_JOBS=2 "$PY" -m pip install --quiet --no-build-isolation torch-cluster==1.6.3
fi

if [ "$TARGET" = requirements-test.txt ] && [ ! -x /usr/bin/chromium ]; then
  echo "[setup] installing Debian chromium for the browser tests"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium chromium-driver >/dev/null
  [ -x /usr/bin/chromium ] || { echo "[setup] chromium did not install; browser tests cannot run" >&2; exit 1; }
fi
echo "[setup] environment ready: $VENV"
