#!/usr/bin/env bash
# Independent file validators the tests use, beside the Python test extras (pyproject.toml):
#   - the Khronos glTF validator (npm gltf-validator), in .cache/node-tools.
# Installs Node.js from Debian when `node`/`npm` are missing. Idempotent; about a second when
# everything is in place. Exported formats are then checked in CI, not skipped.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

GLTF_VALIDATOR="gltf-validator@2.0.0-dev.3.10"
prefix=.cache/node-tools
say() { printf 'test-tools: %s\n' "$*"; }

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    say "installing nodejs and npm (Debian) for the glTF validator"
    as_root=()
    [ "$(id -u)" -eq 0 ] || as_root=(sudo)
    export DEBIAN_FRONTEND=noninteractive
    "${as_root[@]}" apt-get update -qq
    "${as_root[@]}" apt-get install -y -qq --no-install-recommends nodejs npm </dev/null
fi

if [ -f "$prefix/node_modules/gltf-validator/package.json" ] \
   && grep -q '"version": "2.0.0-dev.3.10"' "$prefix/node_modules/gltf-validator/package.json"; then
    say "ready ($GLTF_VALIDATOR)"
    exit 0
fi
say "installing $GLTF_VALIDATOR into $prefix"
mkdir -p "$prefix"
npm install --silent --no-audit --no-fund --prefix "$prefix" "$GLTF_VALIDATOR" >/dev/null
say "ready"
