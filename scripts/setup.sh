#!/usr/bin/env bash
# Set up Longshot from scratch: bubblewrap (Debian/Ubuntu), a virtual environment in .venv,
# and the package with its test tools. Safe to run again. `--fresh` recreates .venv.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v bwrap >/dev/null 2>&1; then
  echo "setup: installing bubblewrap (the workers' sandbox)"
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && apt-get install -y -qq bubblewrap
  elif command -v sudo >/dev/null 2>&1; then
    sudo apt-get update -qq && sudo apt-get install -y -qq bubblewrap
  else
    echo "setup: cannot install bubblewrap (not root, no sudo). Install it, or run with SANDBOX_ISOLATION=none." >&2
  fi
fi

if [ "${1:-}" = "--fresh" ]; then rm -rf .venv; fi
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
echo "setup: done (.venv/bin/longshot)"
