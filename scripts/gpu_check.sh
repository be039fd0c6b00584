#!/usr/bin/env bash
# The GPU acceptance check (scripts/gpu_check.py), as one command for a lent GPU machine: installs the wheels of
# scripts/gpu_wheels.sh (carried in .whl/) for that machine's own Python and torch, then runs the check.
#   here:   bash scripts/gpu_wheels.sh
#   device: bash scripts/gpu_check.sh            (run with carry: ['.whl'])
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD
fi
export PYTHONUNBUFFERED=1 MPLBACKEND=Agg
exec python3 scripts/gpu_check.py "$@"
