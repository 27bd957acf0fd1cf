#!/usr/bin/env bash
# Set up (if needed) and run the whole pytest suite under a virtual X server (Xvfb + Mesa),
# so the GUI tests get an OpenGL context on a headless machine. Arguments go to pytest, e.g.
#   bash scripts/run-tests.sh -q -k smoke
# Exits non-zero when a test fails or when no test was collected.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/setup.sh
bash scripts/test-tools.sh

export QT_QPA_PLATFORM=xcb
export LIBGL_ALWAYS_SOFTWARE=1
export HF_HUB_OFFLINE=1
export TRANSFORMERS_OFFLINE=1
export PYTHONDONTWRITEBYTECODE=1
export MPLBACKEND=Agg
# exporter tests fail, rather than skip, when an independent validator is missing
export PGR2M_REQUIRE_VALIDATORS=1

rc=0
xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python -m pytest "$@" || rc=$?
if [ "$rc" -eq 5 ]; then
    echo "run-tests: pytest collected no tests; treating that as a failure" >&2
    exit 1
fi
exit "$rc"
