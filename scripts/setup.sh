#!/usr/bin/env bash
# Set up Longshot: bubblewrap (Debian/Ubuntu), a virtual environment in .venv with the core
# package (what `longshot demo` and a local run need: no Ray, Modal or mini-swe-agent), and
# `longshot` on your PATH (a link in ~/.local/bin when that folder is on PATH). Safe to run again.
#
#   scripts/setup.sh            the core install (the README's first command)
#   scripts/setup.sh --test     also what the tests need: tmux and chromium (Debian), pytest,
#                               mypy, the Ray and Modal SDKs (their adapters are tested), the web
#                               view's extra and Playwright, and mini-swe-agent (an external
#                               worker harness, in .venv-tools/; LONGSHOT_SKIP_HARNESSES=1 skips it)
#   scripts/setup.sh --web      the web view (longshot serve, --web)  (pip install 'longshot[web]')
#   scripts/setup.sh --ray      the Ray sandbox provider's SDK      (pip install 'longshot[ray]')
#   scripts/setup.sh --modal    the Modal sandbox provider's SDK    (pip install 'longshot[modal]')
#   scripts/setup.sh --fresh    recreate .venv first (combine with the others)
set -euo pipefail
cd "$(dirname "$0")/.."

extras=() test=0
for arg in "$@"; do
  case "$arg" in
    --fresh) rm -rf .venv .venv-tools ;;
    --test) test=1; extras+=(test ray modal web) ;;
    --ray|--modal|--web) extras+=("${arg#--}") ;;
    *) echo "setup: unknown option $arg (see the top of scripts/setup.sh)" >&2; exit 2 ;;
  esac
done

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
if [ "$test" = 1 ]; then
  apt_install tmux tmux "the dashboard's terminal tests" \
    "install it, or the tests that drive the dashboard in a real terminal are skipped"
  apt_install chromium chromium "the web view's browser tests (driven by Playwright, never its own browser download)" \
    "install it, or the tests that drive the web view in a real browser are skipped"
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
spec="."
if [ "${#extras[@]}" -gt 0 ]; then spec=".[$(IFS=,; echo "${extras[*]}")]"; fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e "$spec"

# mini-swe-agent lives in its own environment: it pins an older openai SDK through litellm.
if [ "$test" = 1 ] && [ -z "${LONGSHOT_SKIP_HARNESSES:-}" ] && [ ! -x .venv-tools/mini-swe-agent/bin/mini ]; then
  echo "setup: installing mini-swe-agent into .venv-tools/mini-swe-agent (about two minutes)"
  python3 -m venv .venv-tools/mini-swe-agent
  .venv-tools/mini-swe-agent/bin/python -m pip install --quiet --disable-pip-version-check \
    "mini-swe-agent==2.4.6" "mcp>=1.0"
fi

# `longshot` on PATH, as pipx would put it: a link in ~/.local/bin when that folder is on PATH.
bin="$HOME/.local/bin"
case ":$PATH:" in
  *":$bin:"*)
    mkdir -p "$bin"
    if [ ! -e "$bin/longshot" ] || [ -L "$bin/longshot" ]; then
      ln -sf "$PWD/.venv/bin/longshot" "$bin/longshot"
      echo "setup: done; longshot is on your PATH ($bin/longshot -> $PWD/.venv/bin/longshot)"
      exit 0
    fi ;;
esac
echo "setup: done (.venv/bin/longshot). To type just 'longshot': export PATH=\"$PWD/.venv/bin:\$PATH\""
