#!/usr/bin/env bash
# Idempotent set-up for PGR²M Studio, used by run-app.sh and run-tests.sh.
#   1. Debian packages for Qt (xcb), Mesa OpenGL and Xvfb, installed only when missing.
#   2. A virtual environment in .venv (created only when missing).
#   3. The CPU build of torch (torch==2.13.0) first, then `pip install -e ".[test]"`;
#      skipped when pyproject.toml (and this script) are unchanged since the last success.
# Safe to run again at any time; takes about a second when everything is in place.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo=$(pwd)

TORCH_PIN="torch==2.13.0"   # CPU wheel; a bare `torch` would pull the CUDA wheels (GBs)
APT_PACKAGES=(
    xvfb xauth libgl1-mesa-dri libegl1 libgl1 libxkbcommon-x11-0 libxcb-cursor0
    libxcb-icccm4 libxcb-keysyms1 libxcb-shape0 libxcb-xinerama0 libxcb-randr0
    libxcb-render-util0 libxcb-image0 libdbus-1-3 libfontconfig1
)

say() { printf 'setup: %s\n' "$*"; }

# 1. System packages --------------------------------------------------------------------
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
# Debian's own python3 needs python3-venv for `python3 -m venv` (pyenv/python.org builds do not).
if [ ! -x .venv/bin/python ] && ! python3 -c "import ensurepip, venv" >/dev/null 2>&1; then
    missing+=(python3-venv)
fi
if ((${#missing[@]})); then
    say "installing system packages: ${missing[*]}"
    if [ "$(id -u)" -eq 0 ]; then
        as_root=()
    elif command -v sudo >/dev/null 2>&1; then
        as_root=(sudo)
    else
        say "error: not root and no sudo; install these packages first: ${missing[*]}" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    "${as_root[@]}" apt-get update -qq
    "${as_root[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null
fi

# 2. Virtual environment ----------------------------------------------------------------
py="$repo/.venv/bin/python"
if [ ! -x "$py" ]; then
    say "creating .venv with $(python3 --version 2>&1)"
    python3 -m venv "$repo/.venv"
fi

# 3. Python packages --------------------------------------------------------------------
stamp="$repo/.venv/.pgr2m-setup-stamp"
key=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$key" ]; then
    say "ready (.venv up to date with pyproject.toml)"
    exit 0
fi
rm -f "$stamp"
say "installing $TORCH_PIN (CPU build) into .venv"
"$py" -m pip install --quiet "$TORCH_PIN"
say "installing the project and its test extras: pip install -e \".[test]\""
"$py" -m pip install --quiet -e ".[test]"
echo "$key" >"$stamp"
say "ready"
