#!/usr/bin/env bash
# The whole test suite: set up, lint, then unit and lab tests (lab tests need root).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check hakeeper tests bench scripts
.venv/bin/ruff format --check hakeeper tests bench scripts
# pytest exits 5 when it collected nothing: that is a failure here, as any non-zero is
exec .venv/bin/python -m pytest -q "$@"
