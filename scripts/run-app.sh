#!/usr/bin/env bash
# Set up (if needed) and start PGR²M Studio. Arguments go to main.py, e.g.
#   bash scripts/run-app.sh --screenshot out.png
# Without a display (no DISPLAY / WAYLAND_DISPLAY) the app runs under a virtual X server.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/setup.sh

if [ -z "${DISPLAY:-}" ] && [ -z "${WAYLAND_DISPLAY:-}" ]; then
    echo "run-app: no display found; starting under a virtual X server (xvfb-run), nothing will be"
    echo "run-app: visible. Use --screenshot PATH or --quit-after MS to get something out of it."
    export QT_QPA_PLATFORM=xcb
    exec xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python main.py "$@"
fi
exec .venv/bin/python main.py "$@"
