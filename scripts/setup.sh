#!/usr/bin/env bash
# Set up Longshot from scratch: bubblewrap and tmux (Debian/Ubuntu), a virtual environment in
# .venv, and the package with its test tools, Ray (the Ray provider's tests start a local
# cluster) and the Modal SDK (its adapter is tested against a fake, and its calls against the
# real signatures). Safe to run again. `--fresh` recreates .venv.
set -euo pipefail
cd "$(dirname "$0")/.."

# apt_install COMMAND PACKAGE WHY: install PACKAGE with apt-get when COMMAND is missing.
apt_install() {
  command -v "$1" >/dev/null 2>&1 && return 0
  echo "setup: installing $2 ($3)"
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && apt-get install -y -qq "$2"
  elif command -v sudo >/dev/null 2>&1; then
    sudo apt-get update -qq && sudo apt-get install -y -qq "$2"
  else
    echo "setup: cannot install $2 (not root, no sudo): $4" >&2
  fi
}
apt_install bwrap bubblewrap "the workers' sandbox" \
  "install it, or run with SANDBOX_ISOLATION=none"
apt_install tmux tmux "the dashboard's terminal tests" \
  "install it, or the tests that drive the dashboard in a real terminal are skipped"
apt_install chromium chromium "the web view's browser tests (driven by Playwright, never its own browser download)" \
  "install it, or the tests that drive the web view in a real browser are skipped"

if [ "${1:-}" = "--fresh" ]; then rm -rf .venv .venv-tools; fi
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[dev,ray,modal,web]'

# mini-swe-agent, an external worker harness (WORKER_HARNESS=mini-swe-agent), lives in its
# own environment: it pins an older openai SDK through litellm. LONGSHOT_SKIP_HARNESSES=1 skips it.
if [ -z "${LONGSHOT_SKIP_HARNESSES:-}" ] && [ ! -x .venv-tools/mini-swe-agent/bin/mini ]; then
  echo "setup: installing mini-swe-agent into .venv-tools/mini-swe-agent (about two minutes)"
  python3 -m venv .venv-tools/mini-swe-agent
  .venv-tools/mini-swe-agent/bin/python -m pip install --quiet --disable-pip-version-check \
    "mini-swe-agent==2.4.6" "mcp>=1.0"
fi
echo "setup: done (.venv/bin/longshot)"
