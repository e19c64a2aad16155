#!/usr/bin/env bash
# The demo: set up, then build a lab of three nodes and a client, show an election,
# kill the master, watch the VIP move, and remove the lab.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python scripts/demo.py "$@"
